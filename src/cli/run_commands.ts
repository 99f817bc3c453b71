/**
 * Commands that run models: `train`, `eval`, `sample`, `classify`, `compare`, and `convert-omniglot`.
 */
import { basename, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { IrProgram } from '../ir/types.ts';
import { BACKEND_NAMES, selectBackend, type BackendName } from '../runtime/backend.ts';
import { RunDir, type RunConfig } from '../jobs/run_dir.ts';
import { trainLoop, type LoopResult } from '../jobs/train_loop.ts';
import { estimatorKinds } from '../estimators/registry.ts';
import { irOfRun } from '../jobs/run_dir.ts';
import { addEstimatorArgFlags, argFlag, availableBytes, checkBudget, limitedFlag, loadModel, readSource, refuse, settingOverrides } from './front_end.ts';
import { UsageError } from './errors.ts';
import { compileSource } from '../check/pipeline.ts';
import { renderDiagnostics } from '../diagnostics/render.ts';
import { RunError } from './errors.ts';
import { EVAL_SEED, EvalInterrupted, QUICK_EVAL, runEval, type EvalOptions } from '../jobs/evaluate_run.ts';
import { runSample } from '../jobs/sample_run.ts';
import { plotRuns } from '../jobs/plot_runs.ts';
import { formatResult, runClassify, type ClassifyOptions } from '../jobs/classify_run.ts';
import { addIndexFlags, classifyFromIndex, type IndexClassifyFlags } from './index_command.ts';
import { isRunDir, runCompare, type CompareFlags } from './compare.ts';
import { configFor, type TrainFlags } from './run_config.ts';
import { convertOmniglotZips } from '../data/convert_omniglot.ts';
import { datasetNames, datasetSpec, isGenerated } from '../data/registry.ts';

/** The checker's warnings about inputs no data set can bind (VMM3030-3033): errors for `vmm train`. */
const BINDING_CODES = new Set(['VMM3030', 'VMM3031', 'VMM3032', 'VMM3033']);

function backendOption(): Option {
  return new Option(
    '--backend <name>',
    'force a tfjs backend (default: native tensorflow if installed, else webgpu on a GPU, else wasm, else cpu; webgpu on a software adapter only when named)',
  ).choices([...BACKEND_NAMES]);
}


/** The note for a `--data` that the data set does not read (its registry entry's `readsNoFiles`), or undefined. */
export function ignoredDataDir(dataset: string, dataDir: string | undefined): string | undefined {
  const why = datasetSpec(dataset)?.readsNoFiles;
  if (dataDir === undefined || why === undefined) return undefined;
  return `--data ${dataDir} is ignored: ${why}; it reads no files`;
}

/** The note for `eval` / `sample` of a run whose data set reads no files, given `--data`. */
function noteIgnoredDataDir(run: string, dataDir: string | undefined): void {
  if (dataDir === undefined) return;
  const ignored = ignoredDataDir(RunDir.open(run).config.data.dataset, dataDir);
  if (ignored) process.stderr.write(`vmm: note: ${ignored}\n`);
}

/** Flags given with --resume that differ from the run's own settings, as "--lr 0.01 (the run has 0.001)". */
export function resumeConflicts(config: RunConfig, f: TrainFlags, given: (key: string) => boolean): string[] {
  const est = config.train.estimator;
  const d = config.data;
  const flags = f as unknown as Record<string, unknown>;
  const checks: [string, string, unknown, unknown][] = [
    ['estimator', '--estimator', f.estimator, est.kind],
    ['k', '--k', f.k, est.k],
    ['addressing', '--addressing', f.addressing, config.train.control ? 'none' : est.kind === 'soft' ? 'soft' : 'hard'],
    // The run's estimator's own arguments (--baseline, --temperature, ...).
    ...Object.entries(est.args).map(([name, v]): [string, string, unknown, unknown] => {
      const { flag, key } = argFlag(name);
      return [key, flag, flags[key], v];
    }),
    ['batch', '--batch', f.batch, config.train.batch],
    ['lr', '--lr', f.lr, config.train.optimizer.lr],
    ['seed', '--seed', f.seed, config.seed],
    ['dataset', '--dataset', f.dataset, d.dataset],
    ['classes', '--classes', f.classes, d.classes],
    ['shots', '--shots', f.shots, d.shots],
    ['minShots', '--min-shots', f.minShots, d.minShots ?? d.shots],
    ['distractors', '--distractors', f.distractors, d.distractors],
    ['memory', '--memory', f.memory === undefined ? undefined : resolve(f.memory), d.memory?.path],
    ['validEvery', '--valid-every', f.validEvery, config.validEvery],
    ['validSize', '--valid-size', f.validSize, config.validSize],
    ['checkpointEvery', '--checkpoint-every', f.checkpointEvery, config.checkpointEvery],
  ];
  return checks.filter(([key, , v, run]) => given(key) && v !== undefined && v !== run).map(([, flag, v, run]) => `${flag} ${String(v)} differs from the run's ${String(run)}`);
}

/** The IR of a run: its saved source compiled again with the saved settings. */

function addTrainFlags(cmd: Command): Command {
  cmd
    .option('--data <dir>', 'data directory of the built-in sets (default: $VMM_DATA, else the `vmm data get` cache, else ../shared/data)')
    .option(
      '--dataset <name|path>',
      `data set: ${datasetNames().join(', ')}, or your own: a .npy/.npz file or a folder of PNGs with one sub-folder per class (default: the model's train block, else mnist)`,
    )
    .option('--valid-data <path>', 'with --dataset PATH: a second file or folder of validation images (default: a held-out part)')
    .option('--estimator <name>', estimatorKinds().join(' | '))
    .option('--k <n>', 'samples per example (K of the K-sample bound)', limitedFlag('k', '--k'))
    .option('--addressing <mode>', 'hard | soft | none: the same file with sampled reads, as a soft-attention model (a latent query), or as its no-memory control')
  // The estimators' own arguments (--baseline, --temperature, ...), from their registry entries.
  return addEstimatorArgFlags(cmd)
    .option('--steps <n>', 'training steps', limitedFlag('steps', '--steps'))
    .option('--minutes <x>', 'wall-clock budget: stop (and save the final weights) after this many minutes of training, or at --steps if that comes first', limitedFlag('minutes', '--minutes'))
    .option('--batch <n>', 'examples (episodes) per step', limitedFlag('batch', '--batch'))
    .option('--lr <x>', 'learning rate', limitedFlag('lr', '--lr'))
    .option('--seed <n>', 'random seed', limitedFlag('seed', '--seed'), 1)
    .option('--classes <n>', 'few-shot episodes: classes in memory', limitedFlag('classes', '--classes'))
    .option('--shots <n>', 'few-shot episodes: examples per class in memory', limitedFlag('shots', '--shots'))
    .option('--min-shots <n>', 'few-shot episodes: each training batch draws its shots from this many .. --shots (validation keeps --shots)', limitedFlag('minShots', '--min-shots'))
    .option('--distractors <n>', 'few-shot episodes: extra entries from other classes', limitedFlag('distractors', '--distractors'))
    .option('--memory <file>', 'one memory (.npy/.npz images, as vmm index reads) that every target addresses, instead of few-shot episodes; targets come from --dataset')
    .option('--checkpoint-every <n>', 'steps between checkpoints', limitedFlag('checkpointEvery', '--checkpoint-every'), 200)
    .option('--valid-every <n>', 'steps between validations (default: steps/20, at most 500: a curve of 20 points in TensorBoard and vmm plot)', limitedFlag('validEvery', '--valid-every'))
    .option('--valid-size <n>', 'held-out examples per validation', limitedFlag('validSize', '--valid-size'), 256)
    .addOption(backendOption())
    .option('--quiet', 'no progress output');
}

export function registerRunCommands(program: Command): void {
  addTrainFlags(
    program
      .command('train')
      .description('train a model; writes a run directory with config, metrics.jsonl, checkpoints and final weights')
      .argument('[model]', '.vmm file (omit with --resume)')
      .option('--out <dir>', 'run directory (default: runs/<model>-<estimator>)')
      .option('--resume <dir>', 'continue an interrupted run from its last checkpoint'),
  ).action(async (model: string | undefined, f: TrainFlags & { out?: string }, cmd: Command) => {
    const log = (m: string) => {
      if (!f.quiet) process.stderr.write(m + '\n');
    };
    // Everything is validated (model, settings, memory, backend, the folder) before a folder is made.
    let dir: RunDir;
    let config: RunConfig;
    let ir: IrProgram;
    if (f.resume) {
      if (f.out !== undefined && resolve(f.out) !== resolve(f.resume)) {
        throw new RunError(`--out ${f.out} and --resume ${f.resume} name different folders: a resumed run stays where it is; drop --out`);
      }
      ({ dir, config } = RunDir.open(f.resume));
      if (dir.state === 'new') {
        // What `train --out` accepts, `--resume` must not send elsewhere: a run with no complete checkpoint starts again.
        throw new RunError(
          `${f.resume} never reached its first checkpoint, so there is nothing to resume; start it again with: vmm train ${config.modelPath} --out ${f.resume}`,
        );
      }
      if (model !== undefined) {
        const text = readSource(model).text;
        if (text !== config.source) {
          throw new RunError(
            `${model} is not the model of the run in ${f.resume} (it was trained from ${config.modelPath}, whose text differs); ` +
              `drop the model argument to continue the run, or train ${model} into a new --out`,
          );
        }
      }
      const conflicts = resumeConflicts(config, f, (k) => cmd.getOptionValueSource(k) === 'cli');
      if (conflicts.length) {
        throw new RunError(
          `--resume continues ${f.resume} with its own settings, but ${conflicts.join(', ')}; drop ${conflicts.length === 1 ? 'that flag' : 'those flags'}, or start a new run with --out`,
        );
      }
      if (f.data !== undefined) config = { ...config, data: { ...config.data, dataDir: f.data } };
      ir = irOfRun(config);
      if (f.steps !== undefined) config = { ...config, train: { ...config.train, steps: f.steps } };
      if (f.minutes !== undefined) config = { ...config, minutes: f.minutes };
      ir = { ...ir, train: config.train };
      const backend = await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      checkBudget(ir, backend.name);
      dir.lock();
    } else {
      if (!model) throw new UsageError('train needs a model file (or --resume DIR)');
      const loaded = loadModel(model, { quietWarnings: true });
      if (!loaded.ok || !loaded.result.ir) {
        process.exitCode = 1;
        return;
      }
      ({ config, ir } = configFor(model, loaded.src.text, f));
      // What `vmm check` warns about and a data set cannot feed (src/check/inputs.ts) stops training here.
      const unbindable = loaded.result.diagnostics.filter((d) => BINDING_CODES.has(d.code));
      if (unbindable.length && !isGenerated(config.data.dataset)) {
        process.stderr.write(renderDiagnostics(loaded.src, unbindable.map((d) => ({ ...d, severity: 'error' as const }))) + '\n');
        process.exitCode = 1;
        return;
      }
      const out = f.out ?? join('runs', `${basename(model, '.vmm')}-${config.train.control ? 'control' : config.train.estimator.kind}`);
      const refused = RunDir.refusal(out, config.source);
      if (refused) throw new RunError(refused);
      const ignored = ignoredDataDir(config.data.dataset, f.data);
      if (ignored) process.stderr.write(`vmm: note: ${ignored}\n`);
      const backend = await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      checkBudget(ir, backend.name);
      dir = RunDir.create(out, config);
      log(`run directory: ${out}`);
    }
    let r: LoopResult;
    try {
      r = await trainLoop(dir, config, ir, Boolean(f.resume), { progress: !f.quiet, log });
      dir.writeJson('summary.json', { ...r, finishedAt: new Date().toISOString() });
    } catch (e) {
      // A start that failed before the first step (data not found, ...) leaves no run folder behind.
      if (!f.resume) dir.discardIfUnstarted();
      throw e;
    } finally {
      dir.release();
    }
    if (!r.interrupted) {
      log(
        `done: ${r.steps} steps, ${(1000 / r.msPerStep).toFixed(1)} steps/s, final training bound ${r.lastBound.toFixed(2)}` +
          (r.validBound !== undefined ? `, validation bound ${r.validBound.toFixed(2)} nats` : '') +
          (r.skippedSteps ? `; ${r.skippedSteps} update${r.skippedSteps === 1 ? '' : 's'} skipped (a gradient not finite: the 'skipped' records of metrics.jsonl name the variables)` : ''),
      );
      log(`next: vmm eval ${dir.path}   vmm sample ${dir.path}`);
    }
    process.exitCode = r.interrupted ? 130 : 0;
  });

  program
    .command('eval')
    .description('evaluate a run: test NLL (importance sampled), few-shot accuracy and KL(q(a|x) || p(a)) over memory sizes; writes eval/ with a table and plots')
    .argument('<run>', 'run directory')
    .option('--data <dir>', 'data directory')
    .option('--memory <file>', 'one memory file (.npy/.npz images) that every test target addresses, instead of episodes (default for a run trained with --memory: its own)')
    .option('--samples <n>', 'importance samples for the NLL', limitedFlag('samples', '--samples'), 1000)
    .option('--episodes <n>', 'test episodes per configuration', limitedFlag('episodes', '--episodes'), 200)
    .option('--quick', `a first look: ${QUICK_EVAL.episodes} episodes x ${QUICK_EVAL.samples} importance samples (about 1/40 of the time of the full protocol, the default; standard errors about 2x wider)`)
    .option('--memory-sizes <list>', 'memory sizes to evaluate (comma separated)', '1,2,3,4,5,10,19')
    .option('--classes-list <list>', 'classes in memory (comma separated)', '1,2')
    .option('--ways <list>', 'n-way 1-shot classification by argmax q(a|x) (comma separated)', '5,20')
    .option('--large <list>', 'large shared memories of unseen classes (comma separated; "" to skip)', '100,500,2500')
    .option('--large-targets <n>', 'targets scored against each large shared memory', limitedFlag('episodes', '--large-targets'), 100)
    .option('--lake', "Omniglot: Lake's 20 within-alphabet 20-way one-shot runs (argmax q(a|x), 400 trials)")
    .option('--seed <n>', 'evaluation seed', limitedFlag('seed', '--seed'), EVAL_SEED)
    .addOption(backendOption())
    .option('--out <dir>', 'where to write the report (default: RUN/eval)')
    .option('--json', 'print the results as JSON on stdout')
    .action(async (run: string, f: EvalOptions & { backend?: BackendName; json?: boolean }, cmd: Command) => {
      noteIgnoredDataDir(run, f.data);
      if (f.quick) {
        // --quick sets what --episodes and --samples do not.
        if (cmd.getOptionValueSource('episodes') !== 'cli') f.episodes = QUICK_EVAL.episodes;
        if (cmd.getOptionValueSource('samples') !== 'cli') f.samples = QUICK_EVAL.samples;
      }
      await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      // Ctrl-C stops between batches; what is done stays in eval/partial.json for the next run.
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const result = await runEval(run, { ...f, signal: stop.signal });
        if (f.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      } catch (e) {
        if (!(e instanceof EvalInterrupted)) throw e;
        process.stderr.write(`vmm: ${e.message}\n`);
        process.exitCode = 130;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  program
    .command('sample')
    .description('PNG grids: generations conditioned on a memory (memory row, then samples) and reconstructions')
    .argument('<run>', 'run directory')
    .option('--data <dir>', 'data directory')
    .option('--memory <spec>', 'each episode\'s memory from the test split: "episode" (the run\'s training classes x shots), C (C classes, the run\'s shots) or CxS', 'episode')
    .option('--rows <n>', 'episodes (one grid block each)', limitedFlag('rows', '--rows'), 4)
    .option('--samples <n>', 'samples per episode', limitedFlag('samples', '--samples'), 8)
    .option('--out <dir>', 'where to write the PNGs (default: RUN/samples)')
    .option('--seed <n>', 'seed', limitedFlag('seed', '--seed'), 7)
    .addOption(backendOption())
    .action(async (run: string, f: { data?: string; memory: string; rows: number; samples: number; out?: string; seed: number; backend?: BackendName }) => {
      const spec = /^(\d+)(?:x(\d+))?$/.exec(f.memory.trim());
      if (f.memory !== 'episode' && (!spec || Number(spec[1]) < 1 || (spec[2] !== undefined && Number(spec[2]) < 1))) {
        throw new UsageError(`--memory ${f.memory}: expected "episode", a number of classes C, or CxS (classes x shots), e.g. 5 or 5x1`);
      }
      noteIgnoredDataDir(run, f.data);
      await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      const { files } = await runSample(run, { ...f, ...(spec ? { classes: Number(spec[1]), ...(spec[2] !== undefined ? { shots: Number(spec[2]) } : {}) } : {}) });
      // The results (the files written) on stdout; progress went to stderr.
      for (const file of files) process.stdout.write(file + '\n');
    });

  program
    .command('plot')
    .description('training curves of one or several runs (bound and validation bound against the step; KL of the address): SVG with a PNG beside it')
    .argument('<runs...>', 'run directories')
    .option('--out <file.svg>', 'the SVG to write, its PNG beside it (default: RUN/training_curves.svg for one run, else ./training_curves.svg)')
    .action((runs: string[], f: { out?: string }) => {
      for (const file of plotRuns(runs, f)) process.stdout.write(file + '\n');
    });

  const classify = program
    .command('classify')
    .description('few-shot classification of your own images: for each query the memory entry argmax q(a|x), its probability and the top few')
    .argument('<run>', 'run directory')
    .option('--memory <file>', 'memory images, .npy or .npz ([N, H, W], [N, H*W], ...; an .npz may add "labels"), e.g. one support image per class (or --index)')
    .requiredOption('--queries <file>', 'query images, .npy or .npz')
    .option('--top <n>', 'entries listed per query', limitedFlag('top', '--top'), 3)
    .option('--json', 'one JSON object per query (JSON lines)')
    .addOption(new Option('--binarize <mode>', 'sample: seeded Bernoulli draw with p = intensity (as in evaluation); threshold: ink where intensity >= 1/2').choices(['sample', 'threshold']).default('sample'))
    .option('--seed <n>', 'binarization seed', limitedFlag('seed', '--seed'), 12345)
    .addOption(backendOption());
  // Large memories: --index DIR of `vmm index` (src/cli/index_command.ts).
  addIndexFlags(classify).action(async (run: string, f: ClassifyOptions & IndexClassifyFlags & { backend?: BackendName }) => {
    await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
    if (f.index !== undefined) return classifyFromIndex(run, f);
    if (f.memory === undefined) throw new UsageError('classify needs --memory FILE (or --index DIR of vmm index)');
    if (f.exact) throw new UsageError('--exact goes with --index DIR');
    await runClassify(run, f, (r) => process.stdout.write((f.json ? JSON.stringify(r) : formatResult(r)) + '\n'));
  });

  addTrainFlags(
    program
      .command('compare')
      .description(
        'models side by side with the same data, seed and budget: variants of one model (--variants), several model files (each with its own estimator), or finished run directories; one markdown table (paired differences) and shared plots',
      )
      .argument('<models-or-runs...>', '.vmm files and/or run directories')
      .option('--variants <list>', `comma separated: hard, soft, control, or estimators (${estimatorKinds().join(', ')}) (default: hard,soft for one file; each file's own estimator for several; a no-memory control is added)`)
      .option('--seeds <n>', 'seeds per variant: each variant trained once per seed (seeds --seed, --seed + 1, ...); seed-level standard errors', limitedFlag('seeds', '--seeds'), 3)
      .option('--no-control', 'leave out the no-memory control (same networks, memory entries replaced by one learned entry)')
      .option('--out <dir>', 'output directory (default: runs/compare-<model>, or runs/compare-models)')
      .option('--eval-episodes <n>', 'test episodes per configuration in the evaluation', limitedFlag('episodes', '--eval-episodes'), 100)
      .option('--eval-samples <n>', 'importance samples in the evaluation', limitedFlag('samples', '--eval-samples'), 200)
      .option('--memory-sizes <list>', 'memory sizes for the evaluation', '1,2,4,8,16')
      .option('--classes-list <list>', 'classes in memory for the NLL rows (comma separated; default 1,2)')
      .option('--ways <list>', 'n-way 1-shot accuracy tasks (comma separated; default 5)')
      .option('--json', 'print the results as JSON on stdout instead of the table'),
  ).action(async (targets: string[], f: CompareFlags) => {
    const backend = await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
    // The memory budget at the flags' settings, before any folder is made (runCompare reports the models' diagnostics).
    // Each file goes through the front end once: runCompare and the runs' programs reuse its result (src/check/pipeline.ts).
    for (const model of targets.filter((t) => !isRunDir(t))) {
      const checked = compileSource(readSource(model).text, { settings: { overrides: settingOverrides(f) }, budget: availableBytes(backend.name) });
      if (!checked.ir) continue;
      if (checked.problem) refuse(checked.problem);
      const ignored = ignoredDataDir(f.dataset ?? checked.ir.train.dataset, f.data);
      if (ignored) process.stderr.write(`vmm: note: ${ignored}\n`);
    }
    const results = await runCompare(targets, f);
    if (f.json) process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  });

  program
    .command('convert-omniglot')
    .description('convert the original Omniglot zips (105x105 PNGs) to the compact 28x28 form used by vmm')
    .argument('<zips...>', 'images_background.zip, images_evaluation.zip, ...')
    .requiredOption('--out <dir>', 'output directory (writes omniglot28_u8.bin.gz and omniglot28_index.json)')
    .action(async (zips: string[], f: { out: string }) => {
      const r = await convertOmniglotZips(zips, f.out, {
        onProgress: (done: number, total: number) => {
          if (done % 1000 === 0 || done === total) process.stderr.write(`converted ${done}/${total} images\n`);
        },
      });
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    });
}
