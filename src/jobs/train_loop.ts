/**
 * The training loop behind `vmm train` and `vmm compare`: steps with progress, periodic
 * validation on a fixed held-out set, atomic checkpoints, exact resume, a clean stop on NaN and
 * on Ctrl-C (the checkpoint is written before exiting).
 */
import { existsSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import type { IrProgram } from '../ir/types.ts';
import { importanceBoundAsync } from '../lower/objective.ts';

import { RunError } from '../diagnostics/errors.ts';
import { type RawBatch } from '../data/bind.ts';
import { trainStream, validationBatches } from '../data/source.ts';
import { RunDir, type RunConfig } from './run_dir.ts';
import { Trainer, type TrainerState } from '../runtime/trainer.ts';
import { CheckpointError, checkpointFile, loadCheckpoint, saveCheckpoint } from '../runtime/checkpoint.ts';
import { trainingMetaProblem } from '../runtime/checkpoint_schema.ts';
import { firstNonFiniteSite, implausibleBound } from '../runtime/divergence.ts';
import { Rng } from '../random/rng.ts';
import { faultPoint } from '../runtime/fault.ts';
import { EventFileWriter, truncateEventFiles } from '../report/tensorboard.ts';
import { addressKl, sampleGridPng } from './summaries.ts';

export interface LoopOptions {
  /** Print progress (a bar on a terminal, log lines otherwise). */
  progress: boolean;
  log: (line: string) => void;
  /** Stop after this many steps in this invocation (tests; default: until train.steps). */
  maxStepsThisRun?: number;
  /** Stops training between steps as Ctrl-C does (a library caller's): the checkpoint is saved, the result says interrupted. */
  signal?: AbortSignal;
  /** Called after every step with its number and bound. */
  onStep?: (step: number, bound: number) => void;
}

export interface LoopResult {
  steps: number;
  interrupted: boolean;
  /** Training ended because the run's time budget (`minutes`) was spent. */
  budgetSpent: boolean;
  /** Seconds of training over all invocations of the run. */
  trainedSeconds: number;
  lastBound: number;
  validBound?: number;
  msPerStep: number;
  wallSeconds: number;
  /** Steps of this invocation whose update was skipped: their gradient was not finite (the loss was). */
  skippedSteps?: number;
}

/**
 * Steps in a row whose gradient may be non-finite before the run stops: one such step is a rare
 * underflow (skipped, logged), a run of them a model whose gradient is broken for good.
 */
export const MAX_SKIPPED_IN_A_ROW = 5;

interface CheckpointMeta {
  trainer: TrainerState;
  stream: unknown;
  /** Seconds of training before this checkpoint, over all invocations (for `--minutes`). */
  trainedSeconds?: number;
}

/** Validation: the mean K-sample bound (K = the training K) on the fixed held-out batches. */
export async function validate(trainer: Trainer, batches: RawBatch[], seed: number): Promise<number> {
  const rng = new Rng(seed);
  let sum = 0;
  let n = 0;
  const mode = trainer.estimator.discrete === 'soft' ? 'soft' : 'sample';
  for (const raw of batches) {
    const bound = await importanceBoundAsync(trainer.ir, () => trainer.model.inputs(raw), trainer.model.applyNet, {
      k: Math.max(trainer.estimator.k, 1),
      chunk: 16,
      rng,
      reads: mode,
    });
    for (const v of bound) sum += v;
    n += bound.length;
  }
  return sum / n;
}

export async function trainLoop(dir: RunDir, config: RunConfig, ir: IrProgram, resume: boolean, opts: LoopOptions): Promise<LoopResult> {
  const trainer = new Trainer(ir, config.seed);
  const budgetSeconds = config.minutes !== undefined ? config.minutes * 60 : Infinity;
  let trainedBefore = 0;
  const stream = trainStream(ir, config.data);
  const valid = validationBatches(ir, config.data, config.validSize, Math.min(config.train.batch, 64));
  if (resume) {
    let meta: CheckpointMeta;
    try {
      // The metadata is checked whole before anything is restored (src/runtime/checkpoint_schema.ts).
      meta = loadCheckpoint(dir.checkpointPath, trainer.model.variables, trainer.optimizer, (m) => trainingMetaProblem(m, stream.state())) as CheckpointMeta;
      trainer.setState(meta.trainer);
      stream.setState(meta.stream);
    } catch (e) {
      trainer.dispose();
      if (e instanceof RangeError) throw new CheckpointError(`${checkpointFile(dir.checkpointPath)} is not a valid checkpoint of this run: ${e.message}`);
      throw e;
    }
    trainedBefore = meta.trainedSeconds ?? 0;
    if (trainedBefore >= budgetSeconds) {
      trainer.dispose();
      throw new RunError(
        `${dir.path} has spent its time budget already (${(trainedBefore / 60).toFixed(1)} of ${config.minutes} minutes); to train it further, pass --minutes with more than ${(trainedBefore / 60).toFixed(1)}`,
      );
    }
    if (trainer.stepCount >= config.train.steps) {
      const at = trainer.stepCount;
      trainer.dispose();
      throw new RunError(
        at === config.train.steps
          ? `${dir.path} is already complete (${at} step${at === 1 ? '' : 's'}); to train it further, pass --steps with more than ${at}`
          : `${dir.path} is at step ${at} already, past --steps ${config.train.steps}; to train it further, pass --steps with more than ${at}`,
      );
    }
    opts.log(`resumed ${dir.path} at step ${trainer.stepCount}`);
  } else {
    opts.log(`training ${ir.name}: ${stream.describe}`);
  }
  // Records past the checkpoint (written before a kill) are dropped: no step is logged twice.
  dir.truncateMetrics(trainer.stepCount);
  truncateEventFiles(dir.path, trainer.stepCount);
  const events = new EventFileWriter(dir.path);
  const lr = config.train.optimizer.lr;
  const total = config.train.steps;
  const stopAt = opts.maxStepsThisRun ? Math.min(total, trainer.stepCount + opts.maxStepsThisRun) : total;
  let interrupted = false;
  let budgetSpent = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  opts.signal?.addEventListener('abort', onSignal);
  if (opts.signal?.aborted) interrupted = true;

  const t0 = performance.now();
  const trained = () => trainedBefore + (performance.now() - t0) / 1000;
  const save = async () => {
    const meta: CheckpointMeta = { trainer: trainer.state(), stream: stream.state(), trainedSeconds: trained() };
    await saveCheckpoint(dir.checkpointPath, trainer.model.variables, trainer.optimizer, meta, { step: trainer.stepCount });
  };

  const bar =
    opts.progress && process.stderr.isTTY
      ? new SingleBar({
          format: Number.isFinite(budgetSeconds)
            ? 'train |{bar}| step {value} | {budget} | {rate} steps/s | bound {bound} | valid {valid}'
            : 'train |{bar}| {value}/{total} steps | {rate} steps/s | bound {bound} | valid {valid} | eta {eta_formatted}',
          hideCursor: true,
          stream: process.stderr,
        })
      : undefined;
  bar?.start(total, trainer.stepCount, { rate: '-', bound: '-', valid: '-', budget: '' });
  // The moving average goes on from the last one logged (a resumed run's curve has no jump).
  const lastLogged = dir.readMetrics().filter((r) => r['kind'] === 'train' && typeof r['boundEma'] === 'number').at(-1);
  let ema = lastLogged?.['boundEma'] as number | undefined;
  let lastBound = NaN;
  /** The bound of this invocation's first step: the scale of "plausible" (src/runtime/divergence.ts). */
  let firstBound: number | undefined;
  let validBound: number | undefined;
  let stepsThisRun = 0;
  let skippedSteps = 0;
  let skippedInARow = 0;
  let lastLog = performance.now();
  const logEvery = Math.max(1, Math.min(100, Math.floor(total / 20)));
  try {
    while (trainer.stepCount < stopAt && !interrupted && !budgetSpent) {
      const raw = stream.next(config.train.batch);
      // Asynchronous reads of the step's metrics: the one form every backend runs (webgpu has no other).
      const m = await trainer.stepAsync(raw);
      stepsThisRun++;
      if (!Number.isFinite(m.loss) || !Number.isFinite(m.bound)) {
        dir.appendMetrics({ kind: 'error', step: m.step, loss: m.loss, bound: m.bound });
        // Invalid model maths first (no learning rate helps there), else the likely cause: the step size.
        const site = firstNonFiniteSite(trainer, raw, config.seed + 4);
        const hasCheckpoint = existsSync(dir.checkpointPath);
        const kept = site
          ? `${hasCheckpoint ? `The last good checkpoint is kept in ${dir.checkpointPath}.` : `No checkpoint was written before it (the first comes at step ${config.checkpointEvery}).`}\n` +
            `The first value that is not finite is ${site}: check the model's maths that computes it ` +
            `(a log of a number that can be negative, a probability outside [0, 1], a division by zero, an exp that overflows); a lower learning rate will not help.`
          : hasCheckpoint
            ? `The last good checkpoint is kept in ${dir.checkpointPath}: try a lower learning rate (--lr) and --resume ${dir.path}.`
            : `No checkpoint was written before it (the first comes at step ${config.checkpointEvery}): start again with a lower learning rate (--lr).`;
        throw new RunError(`the loss became ${m.loss} (bound ${m.bound}) at step ${m.step}; training stopped.\n${kept}`);
      }
      if (m.skipped) {
        skippedSteps++;
        skippedInARow++;
        dir.appendMetrics({ kind: 'skipped', step: m.step, loss: m.loss, bound: m.bound, variables: m.skipped });
        const which = `${m.skipped.slice(0, 4).join(', ')}${m.skipped.length > 4 ? ` and ${m.skipped.length - 4} more` : ''}`;
        if (skippedInARow >= MAX_SKIPPED_IN_A_ROW) {
          throw new RunError(
            `the gradient of ${which} was not finite at ${skippedInARow} steps in a row (to step ${m.step}), though the loss was; training stopped.\n` +
              `Check the maths that these variables feed: a log, a division or a sqrt whose argument reaches 0 exactly (a log of a softmax entry ` +
              `that underflows: log(p + 1e-6)); a lower learning rate will not help.` +
              (existsSync(dir.checkpointPath) ? ` The last checkpoint is kept in ${dir.checkpointPath}.` : ''),
          );
        }
        if (bar) process.stderr.write('\r\x1b[K'); // the bar redraws below the line
        opts.log(`step ${m.step}: the gradient of ${which} is not finite (the loss is ${m.loss.toFixed(2)}); the update was skipped`);
      } else {
        skippedInARow = 0;
      }
      firstBound ??= m.bound;
      if (implausibleBound(m.bound, firstBound)) {
        dir.appendMetrics({ kind: 'error', step: m.step, loss: m.loss, bound: m.bound });
        throw new RunError(
          `the bound diverged to ${m.bound.toPrecision(3)} at step ${m.step} (it was ${firstBound.toPrecision(3)} at the start); training stopped.\n` +
            `Try a lower learning rate (--lr), gradient clipping (optimizer = adam(lr: ..., clip: 1)) or, for a neural memory, a smaller write rate (lr: in its 'writes' clause)` +
            (existsSync(dir.checkpointPath) ? `; the last checkpoint is kept in ${dir.checkpointPath}.` : '.'),
        );
      }
      lastBound = m.bound;
      opts.onStep?.(m.step, m.bound);
      budgetSpent = trained() >= budgetSeconds;
      const last = m.step === stopAt || budgetSpent;
      ema = ema === undefined ? m.bound : 0.95 * ema + 0.05 * m.bound;
      const rate = (stepsThisRun * 1000) / (performance.now() - t0);
      if (m.step % logEvery === 0 || last) {
        dir.appendMetrics({ kind: 'train', step: m.step, bound: m.bound, boundEma: ema, loss: m.loss, ms: m.ms, stepsPerSec: rate });
        events.scalars(m.step, { 'train/bound': m.bound, 'train/bound_ema': ema, 'train/loss': m.loss, 'train/steps_per_sec': rate, 'train/learning_rate': lr });
      }
      if (config.validEvery > 0 && (m.step % config.validEvery === 0 || m.step === total || budgetSpent)) {
        validBound = await validate(trainer, valid, config.seed + 1);
        const kl = valid[0] ? await addressKl(ir, trainer.model, valid[0], config.seed + 2) : undefined;
        dir.appendMetrics({ kind: 'valid', step: m.step, bound: validBound, ...(kl ? { addressKl: kl.kl, addressKlCeiling: kl.logM } : {}) });
        events.scalars(m.step, { 'valid/bound': validBound, ...(kl ? { 'valid/address_kl': kl.kl, 'valid/address_kl_ceiling': kl.logM } : {}) });
        const grid = valid[0] ? await sampleGridPng(ir, trainer.model, valid[0], { episodes: 4, samples: 8, seed: config.seed + 3 }) : undefined;
        if (grid) events.image(m.step, 'samples/memory_then_generations', grid.png, grid.height, grid.width);
      }
      faultPoint('step:logged');
      if (m.step % config.checkpointEvery === 0) await save();
      const budget = Number.isFinite(budgetSeconds) ? `${(trained() / 60).toFixed(1)}/${config.minutes} min` : '';
      if (bar) {
        if (Number.isFinite(budgetSeconds)) bar.setTotal(Math.max(m.step, Math.round((m.step * budgetSeconds) / trained())));
        bar.update(m.step, { rate: rate.toFixed(1), bound: ema.toFixed(2), valid: validBound?.toFixed(2) ?? '-', budget });
      } else if (opts.progress && (performance.now() - lastLog > 10_000 || last)) {
        lastLog = performance.now();
        opts.log(
          `step ${Number.isFinite(budgetSeconds) ? m.step : `${m.step}/${total}`}  ${rate.toFixed(1)} steps/s  bound ${ema.toFixed(2)}${validBound !== undefined ? `  valid ${validBound.toFixed(2)}` : ''}${budget ? `  ${budget}` : ''}`,
        );
      }
      // Let signal handlers run between steps.
      if (stepsThisRun % 20 === 0) await new Promise((r) => setImmediate(r));
    }
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    opts.signal?.removeEventListener('abort', onSignal);
  }
  await save();
  const wallSeconds = (performance.now() - t0) / 1000;
  if (interrupted) {
    opts.log(`interrupted at step ${trainer.stepCount}; checkpoint saved. Continue with: vmm train --resume ${dir.path}`);
  } else if (trainer.stepCount >= total || budgetSpent) {
    if (budgetSpent) opts.log(`time budget of ${config.minutes} min spent at step ${trainer.stepCount}`);
    // The file's top-level step is the run's (final weights have no optimizer to take it from).
    await saveCheckpoint(dir.finalPath, trainer.model.variables, undefined, { trainer: trainer.state() }, { step: trainer.stepCount });
  }
  const result: LoopResult = {
    steps: trainer.stepCount,
    interrupted,
    budgetSpent,
    trainedSeconds: trained(),
    lastBound,
    ...(validBound !== undefined ? { validBound } : {}),
    msPerStep: stepsThisRun ? (wallSeconds * 1000) / stepsThisRun : NaN,
    wallSeconds,
    ...(skippedSteps ? { skippedSteps } : {}),
  };
  trainer.dispose();
  return result;
}
