/**
 * A run directory holds everything a training run produces, so nothing is lost when it is
 * interrupted:
 *
 *   config.json       the model source, resolved settings, seed, data, backend (written once)
 *   model.vmm         a copy of the model file as trained
 *   metrics.jsonl     one JSON object per line: training and validation figures
 *   events.out.tfevents.*  the same figures (and sample grids) for TensorBoard
 *   checkpoint/       the latest complete checkpoint (replaced atomically)
 *   final/            the weights at the end of training
 *   summary.json      final figures
 *
 * `vmm train --resume DIR` continues from checkpoint/ with the same config.
 *
 * A run folder never lies: it is always in one of three states (`runState`): "new" (no complete
 * checkpoint: a killed first checkpoint write leaves only a temporary file, which does not count),
 * "has checkpoint", or "finished" (final weights written). `create` refuses a folder that holds
 * something other than a vmm run and a run that has a checkpoint; a new run may be started again
 * by the same command (the same model), and `--resume` of a new run says exactly that, so the two
 * messages never send the user to each other. One training writes into a folder at a time
 * (`.vmm-lock`, src/jobs/run_lock.ts). `open` validates config.json, so a damaged folder is
 * one clear line, not a JSON or type error. `discardIfUnstarted` removes a folder whose start failed.
 * Metrics stay true across resumes: `truncateMetrics` drops the records of steps after the
 * checkpoint a run resumes from (the resumed run takes those steps again).
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mkdirpSync, writeFileAtomicSync } from '../report/atomic.ts';
import type { EstimatorArg, EstimatorSettings, IrProgram } from '../ir/types.ts';
import { RunError } from '../diagnostics/errors.ts';
import { limitProblem, type LimitName } from '../check/limits.ts';
import { compileSource } from '../check/pipeline.ts';
import type { DataOptions } from '../data/bind.ts';
import { CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE } from '../runtime/checkpoint.ts';
import { acquireRunLock, holdsRunLock, LOCK_FILE, releaseRunLock, runLockRefusal } from './run_lock.ts';
import { faultPoint } from '../runtime/fault.ts';

/** What a run folder holds: nothing resumable yet, a checkpoint to resume from, or final weights. */
export type RunState = 'new' | 'has checkpoint' | 'finished';

/** Whether folder `dir` holds a complete checkpoint file (temporaries of a killed write do not count). */
export function hasCheckpointFile(dir: string): boolean {
  return existsSync(join(dir, CHECKPOINT_FILE)) || existsSync(join(dir, LEGACY_CHECKPOINT_FILE));
}

/** The state of the run in `path` (see the module comment). */
export function runState(path: string): RunState {
  if (hasCheckpointFile(join(path, 'final'))) return 'finished';
  if (hasCheckpointFile(join(path, 'checkpoint'))) return 'has checkpoint';
  return 'new';
}

/** Entries that do not make a folder a run or not: the lock and temporaries of killed writers. */
function incidental(name: string): boolean {
  return name === LOCK_FILE || (name.startsWith('.') && name.endsWith('.tmp'));
}

export interface RunConfig {
  version: 1;
  modelPath: string;
  source: string;
  /** The IR's settings after command-line overrides. */
  train: IrProgram['train'];
  data: DataOptions;
  seed: number;
  checkpointEvery: number;
  validEvery: number;
  validSize: number;
  /**
   * A wall-clock budget for the whole run, in minutes (`--minutes`), summed over resumed
   * invocations: training stops at whichever comes first, this or `train.steps`.
   */
  minutes?: number;
  createdAt: string;
}

export class RunDir {
  constructor(
    readonly path: string,
    /** Whether this process made the folder (so a failed start may remove it). */
    private readonly created = false,
  ) {}

  /**
   * Why `create` would refuse `path`, or undefined when it may be used: it does not exist, is an
   * empty folder, or holds a run of the same model that never wrote a checkpoint.
   */
  static refusal(path: string, source: string): string | undefined {
    if (!existsSync(path)) return undefined;
    if (!statSync(path).isDirectory()) return `${path} is a file, not a folder: pick another --out`;
    const busy = runLockRefusal(path);
    if (busy) return busy;
    const entries = readdirSync(path).filter((e) => !incidental(e));
    if (entries.length === 0) return undefined;
    if (!entries.includes('config.json')) {
      return `${path} is not empty and is not a vmm run (no config.json): pick another --out, or an empty or new folder`;
    }
    if (runState(path) !== 'new') return `${path} already holds a run; continue it with --resume ${path}, or pick another --out`;
    let old: unknown;
    try {
      old = JSON.parse(readFileSync(join(path, 'config.json'), 'utf8'));
    } catch {
      return `${path} holds a damaged run (config.json is not valid JSON): remove it, or pick another --out`;
    }
    if ((old as { source?: unknown }).source !== source) {
      return `${path} holds a run of another model that never reached a checkpoint: remove it, or pick another --out`;
    }
    return undefined;
  }

  /** Makes the run folder (see `refusal`); remembers whether it made it, for `discardIfUnstarted`. */
  static create(path: string, config: RunConfig): RunDir {
    const refused = RunDir.refusal(path, config.source);
    if (refused) throw new RunError(refused);
    const fresh = !existsSync(path);
    mkdirpSync(path);
    acquireRunLock(path);
    // Checked again under the lock: another writer may have started between the check and the lock.
    const raced = RunDir.refusal(path, config.source);
    if (raced) {
      releaseRunLock(path);
      throw new RunError(raced);
    }
    // A run that never reached a checkpoint is started again from nothing (a checkpoint/ folder
    // holding only the temporary file of a killed first write included).
    for (const stale of ['metrics.jsonl', 'summary.json', 'final', 'checkpoint']) rmSync(join(path, stale), { recursive: true, force: true });
    const dir = new RunDir(path, fresh);
    writeFileAtomicSync(join(path, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileAtomicSync(join(path, 'model.vmm'), config.source);
    faultPoint('run:created');
    return dir;
  }

  /** Takes the folder's lock for this process (a RunError names a live holder); a no-op if held. */
  lock(): void {
    if (!holdsRunLock(this.path)) acquireRunLock(this.path);
  }

  /** Gives the folder's lock back (a no-op if this process does not hold it). */
  release(): void {
    releaseRunLock(this.path);
  }

  /** The run's state (see the module comment). */
  get state(): RunState {
    return runState(this.path);
  }

  /**
   * After a failed start (before the first step: no metrics, no checkpoint): removes what `create`
   * wrote, and the folder if `create` made it, so that the failure leaves nothing behind. A run
   * that took steps is kept (its metrics say what happened; the same command may start it again).
   */
  discardIfUnstarted(): void {
    if (existsSync(this.checkpointPath) || existsSync(join(this.path, 'metrics.jsonl'))) return;
    for (const f of ['config.json', 'model.vmm', 'summary.json', 'final']) rmSync(join(this.path, f), { recursive: true, force: true });
    this.release();
    if (this.created) {
      try {
        rmdirSync(this.path);
      } catch {
        // Not empty: something else was put there meanwhile; leave it.
      }
    }
  }

  static open(path: string): { dir: RunDir; config: RunConfig } {
    const file = join(path, 'config.json');
    if (!existsSync(file)) throw new RunError(`${path} is not a run directory (no config.json)`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      throw new RunError(`${file} is damaged (not valid JSON: ${e.message}); this run folder cannot be used: train a new run with --out`);
    }
    const problem = configProblem(raw);
    if (problem) throw new RunError(`${file} is not a valid vmm run configuration (${problem}); this run folder cannot be used: train a new run with --out`);
    const config = raw as RunConfig;
    return { dir: new RunDir(path), config: { ...config, train: { ...config.train, estimator: upgradeEstimator(config.train.estimator) } } };
  }

  get checkpointPath(): string {
    return join(this.path, 'checkpoint');
  }

  get finalPath(): string {
    return join(this.path, 'final');
  }

  file(name: string): string {
    return join(this.path, name);
  }

  appendMetrics(record: Record<string, unknown>): void {
    appendFileSync(join(this.path, 'metrics.jsonl'), JSON.stringify(record) + '\n');
  }

  /**
   * The metrics records, in order. A line that is not a JSON object (the last line of a run killed
   * while appending) is skipped.
   */
  readMetrics(): Record<string, unknown>[] {
    const file = join(this.path, 'metrics.jsonl');
    if (!existsSync(file)) return [];
    const out: Record<string, unknown>[] = [];
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as unknown;
        if (r !== null && typeof r === 'object' && !Array.isArray(r)) out.push(r as Record<string, unknown>);
      } catch {
        // A torn line: not a record.
      }
    }
    return out;
  }

  /**
   * Keeps only the metrics records of steps up to `step` (and records without a step), atomically:
   * on resume from the checkpoint at `step`, the records a killed run wrote after it would
   * otherwise stand beside the resumed run's records of the same steps.
   */
  truncateMetrics(step: number): void {
    const file = join(this.path, 'metrics.jsonl');
    if (!existsSync(file)) return;
    const kept = this.readMetrics().filter((r) => typeof r['step'] !== 'number' || r['step'] <= step);
    writeFileAtomicSync(file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }

  writeJson(name: string, value: unknown): void {
    writeFileAtomicSync(join(this.path, name), JSON.stringify(value, null, 2) + '\n');
  }
}

/**
 * Estimator settings as a run saved them. Runs saved before the estimators' arguments were kept by
 * name (`args`) have `vimcoBaseline`, `reinforceBaseline` and `temperature` beside `k`; those are read
 * into `args` (this list is frozen: an estimator added since saves `args`).
 */
export function upgradeEstimator(est: EstimatorSettings): EstimatorSettings {
  if (est.args !== undefined) return est;
  const old = est as unknown as Record<string, unknown>;
  const pick = (key: string): Record<string, EstimatorArg> => (typeof old[key] === 'string' || typeof old[key] === 'number' ? { [key === 'temperature' ? 'temperature' : 'baseline']: old[key] as EstimatorArg } : {});
  const args = est.kind === 'vimco' ? pick('vimcoBaseline') : est.kind === 'reinforce' ? pick('reinforceBaseline') : est.kind === 'relaxed' ? pick('temperature') : {};
  return { kind: est.kind, k: est.k, args };
}

/** What is wrong with a parsed config.json, or undefined: every field a run reads, with its type and limits. */
export function configProblem(raw: unknown): string | undefined {
  const isObj = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (!isObj(raw)) return 'not an object';
  if (raw['version'] !== 1) return `version ${JSON.stringify(raw['version'])}, expected 1`;
  for (const k of ['modelPath', 'source', 'createdAt']) if (typeof raw[k] !== 'string') return `'${k}' is not a string`;
  const train = raw['train'];
  const data = raw['data'];
  if (!isObj(train)) return "'train' is not an object";
  if (!isObj(data)) return "'data' is not an object";
  const est = train['estimator'];
  const opt = train['optimizer'];
  const ep = train['episodes'];
  if (!isObj(est) || typeof est['kind'] !== 'string') return "'train.estimator' is not an estimator";
  if (!isObj(opt) || (opt['kind'] !== 'adam' && opt['kind'] !== 'sgd')) return "'train.optimizer' is not an optimizer";
  if (!isObj(ep)) return "'train.episodes' is not an object";
  if (typeof data['dataset'] !== 'string') return "'data.dataset' is not a string";
  const numbers: [string, unknown, LimitName][] = [
    ['train.steps', train['steps'], 'steps'],
    ['train.batch', train['batch'], 'batch'],
    ['train.estimator.k', est['k'], 'k'],
    ['train.optimizer.lr', opt['lr'], 'lr'],
    ['data.classes', data['classes'], 'classes'],
    ['data.shots', data['shots'], 'shots'],
    ['data.distractors', data['distractors'], 'distractors'],
    ['seed', raw['seed'], 'seed'],
    ['checkpointEvery', raw['checkpointEvery'], 'checkpointEvery'],
    ['validEvery', raw['validEvery'], 'validEvery'],
    ['validSize', raw['validSize'], 'validSize'],
  ];
  if (raw['minutes'] !== undefined) numbers.push(['minutes', raw['minutes'], 'minutes']);
  for (const [key, v, limit] of numbers) {
    if (typeof v !== 'number') return `'${key}' is not a number`;
    const p = limitProblem(limit, v);
    if (p) return `'${key}' ${p}, found ${v}`;
  }
  return undefined;
}

/** The program a run was trained with: its saved model source through the pipeline again, at the run's settings. */
export function irOfRun(config: RunConfig): IrProgram {
  const r = compileSource(config.source, { settings: { train: config.train }, budget: false });
  if (!r.compiled) throw new RunError(`the model saved in the run no longer compiles: ${r.diagnostics.find((d) => d.severity === 'error')?.message ?? r.problem?.message ?? 'unknown error'}`);
  return r.compiled;
}
