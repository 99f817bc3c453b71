/**
 * Commands that run models: `train`, `eval`, `sample`, `classify`, `compare`, and `convert-omniglot`.
 */
import { basename, join } from 'node:path';
import { Option, type Command } from 'commander';
import type { IrProgram } from '../ir/types.ts';
import { selectBackend, type BackendName } from '../runtime/backend.ts';
import { RunDir, type RunConfig } from '../runtime/run_dir.ts';
import { trainLoop } from '../runtime/train_loop.ts';
import { applyOverrides, loadModel, parsePositiveInt, parsePositiveNumber } from './front_end.ts';
import { UsageError } from './errors.ts';
import { frontEnd } from '../check/pipeline.ts';
import { RunError } from './errors.ts';
import { runEval, type EvalOptions } from '../runtime/evaluate_run.ts';
import { runSample } from '../runtime/sample_run.ts';
import { formatResult, runClassify, type ClassifyOptions } from '../runtime/classify_run.ts';
import { runCompare } from '../runtime/compare.ts';
import { convertOmniglotZips } from '../data/convert_omniglot.ts';

const DATASETS = ['mnist', 'omniglot', 'binarized_mnist', 'synthetic', 'recall'] as const;

function backendOption(): Option {
  return new Option('--backend <name>', 'force a tfjs backend (default: native tensorflow if installed, else wasm, else cpu)').choices([
    'tensorflow',
    'wasm',
    'cpu',
  ]);
}

export interface TrainFlags {
  data?: string;
  dataset?: string;
  estimator?: string;
  k?: number;
  addressing?: string;
  baseline?: string;
  steps?: number;
  batch?: number;
  lr?: number;
  seed: number;
  out?: string;
  resume?: string;
  checkpointEvery: number;
  validEvery?: number;
  validSize: number;
  classes?: number;
  shots?: number;
  distractors?: number;
  backend?: BackendName;
  quiet?: boolean;
}

/** Resolves a model file and flags into a run configuration (the file's train block, overridden by flags). */
export function configFor(modelPath: string, ir: IrProgram, source: string, f: TrainFlags): RunConfig {
  if (f.dataset !== undefined && !DATASETS.includes(f.dataset as (typeof DATASETS)[number])) {
    throw new UsageError(`unknown dataset '${f.dataset}' (expected ${DATASETS.join(', ')})`);
  }
  const tuned = applyOverrides(ir, f);
  const ep = tuned.train.episodes;
  const steps = tuned.train.steps;
  return {
    version: 1,
    modelPath,
    source,
    train: tuned.train,
    data: {
      dataset: (f.dataset as RunConfig['data']['dataset']) ?? tuned.train.dataset,
      ...(f.data ? { dataDir: f.data } : {}),
      seed: f.seed,
      classes: f.classes ?? ep.classes,
      shots: f.shots ?? ep.shots,
      distractors: f.distractors ?? ep.distractors,
    },
    seed: f.seed,
    checkpointEvery: f.checkpointEvery,
    validEvery: f.validEvery ?? Math.max(1, Math.min(1000, Math.floor(steps / 5))),
    validSize: f.validSize,
    createdAt: new Date().toISOString(),
  };
}

/** The IR of a run: its saved source compiled again with the saved settings. */
export function irOfRun(config: RunConfig): IrProgram {
  const r = frontEnd(config.source);
  if (!r.ir) throw new RunError(`the model saved in the run no longer compiles: ${r.diagnostics[0]?.message ?? 'unknown error'}`);
  return { ...r.ir, train: config.train };
}

function addTrainFlags(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'data directory (default: $VMM_DATA, else ../shared/data)')
    .option('--dataset <name>', `data set: ${DATASETS.join(', ')} (default: the model's train block, else mnist)`)
    .option('--estimator <name>', 'vimco | reinforce | enumerate | soft | iwae')
    .option('--k <n>', 'samples per example (K of the K-sample bound)', (v) => parsePositiveInt(v, '--k'))
    .option('--addressing <mode>', 'hard | soft: the same model with sampled or soft-attention memory reads')
    .option('--baseline <name>', 'vimco: geometric | arithmetic; reinforce: none | running | nvil')
    .option('--steps <n>', 'training steps', (v) => parsePositiveInt(v, '--steps'))
    .option('--batch <n>', 'examples (episodes) per step', (v) => parsePositiveInt(v, '--batch'))
    .option('--lr <x>', 'learning rate', (v) => parsePositiveNumber(v, '--lr'))
    .option('--seed <n>', 'random seed', (v) => parsePositiveInt(String(Number(v) + 1), '--seed') - 1, 1)
    .option('--classes <n>', 'few-shot episodes: classes in memory', (v) => parsePositiveInt(v, '--classes'))
    .option('--shots <n>', 'few-shot episodes: examples per class in memory', (v) => parsePositiveInt(v, '--shots'))
    .option('--distractors <n>', 'few-shot episodes: extra entries from other classes', (v) => parsePositiveInt(String(Number(v) + 1), '--distractors') - 1)
    .option('--checkpoint-every <n>', 'steps between checkpoints', (v) => parsePositiveInt(v, '--checkpoint-every'), 200)
    .option('--valid-every <n>', 'steps between validations (default: steps/5, at most 1000)', (v) => parsePositiveInt(v, '--valid-every'))
    .option('--valid-size <n>', 'held-out examples per validation', (v) => parsePositiveInt(v, '--valid-size'), 256)
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
  ).action(async (model: string | undefined, f: TrainFlags) => {
    await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
    const log = (m: string) => {
      if (!f.quiet) process.stderr.write(m + '\n');
    };
    let dir: RunDir;
    let config: RunConfig;
    let ir: IrProgram;
    if (f.resume) {
      ({ dir, config } = RunDir.open(f.resume));
      ir = irOfRun(config);
      if (f.steps !== undefined) config = { ...config, train: { ...config.train, steps: f.steps } };
      ir = { ...ir, train: config.train };
    } else {
      if (!model) throw new UsageError('train needs a model file (or --resume DIR)');
      const loaded = loadModel(model, { quietWarnings: true });
      if (!loaded.ok || !loaded.result.ir) {
        process.exitCode = 1;
        return;
      }
      config = configFor(model, loaded.result.ir, loaded.src.text, f);
      ir = { ...loaded.result.ir, train: config.train };
      const out = f.out ?? join('runs', `${basename(model, '.vmm')}-${config.train.estimator.kind}`);
      dir = RunDir.create(out, config);
      log(`run directory: ${out}`);
    }
    const r = await trainLoop(dir, config, ir, Boolean(f.resume), { progress: !f.quiet, log });
    dir.writeJson('summary.json', { ...r, finishedAt: new Date().toISOString() });
    if (!r.interrupted) {
      log(
        `done: ${r.steps} steps, ${(1000 / r.msPerStep).toFixed(1)} steps/s, final training bound ${r.lastBound.toFixed(2)}` +
          (r.validBound !== undefined ? `, validation bound ${r.validBound.toFixed(2)} nats` : ''),
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
    .option('--samples <n>', 'importance samples for the NLL', (v) => parsePositiveInt(v, '--samples'), 1000)
    .option('--episodes <n>', 'test episodes per configuration', (v) => parsePositiveInt(v, '--episodes'), 200)
    .option('--memory-sizes <list>', 'memory sizes to evaluate (comma separated)', '1,2,3,4,5,10,19')
    .option('--classes-list <list>', 'classes in memory (comma separated)', '1,2')
    .option('--ways <list>', 'n-way 1-shot classification by argmax q(a|x) (comma separated)', '5,20')
    .option('--large <list>', 'large shared memories of unseen classes (comma separated; "" to skip)', '100,500,2500')
    .option('--seed <n>', 'evaluation seed', (v) => parsePositiveInt(String(Number(v) + 1), '--seed') - 1, 12345)
    .addOption(backendOption())
    .action(async (run: string, f: EvalOptions & { backend?: BackendName }) => {
      await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      await runEval(run, f);
    });

  program
    .command('sample')
    .description('PNG grids: generations conditioned on a memory (memory row, then samples) and reconstructions')
    .argument('<run>', 'run directory')
    .option('--data <dir>', 'data directory')
    .option('--memory <spec>', 'memory: "episode" (classes x shots from the test split) or a number of classes', 'episode')
    .option('--rows <n>', 'episodes (one grid block each)', (v) => parsePositiveInt(v, '--rows'), 4)
    .option('--samples <n>', 'samples per episode', (v) => parsePositiveInt(v, '--samples'), 8)
    .option('--out <dir>', 'where to write the PNGs (default: RUN/samples)')
    .option('--seed <n>', 'seed', (v) => parsePositiveInt(String(Number(v) + 1), '--seed') - 1, 7)
    .addOption(backendOption())
    .action(async (run: string, f: { data?: string; rows: number; samples: number; out?: string; seed: number; backend?: BackendName }) => {
      await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      await runSample(run, f);
    });

  program
    .command('classify')
    .description('few-shot classification of your own images: for each query the memory entry argmax q(a|x), its probability and the top few')
    .argument('<run>', 'run directory')
    .requiredOption('--memory <file>', 'memory images, .npy or .npz ([N, H, W], [N, H*W], ...; an .npz may add "labels"), e.g. one support image per class')
    .requiredOption('--queries <file>', 'query images, .npy or .npz')
    .option('--top <n>', 'entries listed per query', (v) => parsePositiveInt(v, '--top'), 3)
    .option('--json', 'one JSON object per query (JSON lines)')
    .addOption(new Option('--binarize <mode>', 'sample: seeded Bernoulli draw with p = intensity (as in evaluation); threshold: ink where intensity >= 1/2').choices(['sample', 'threshold']).default('sample'))
    .option('--seed <n>', 'binarization seed', (v) => parsePositiveInt(String(Number(v) + 1), '--seed') - 1, 12345)
    .addOption(backendOption())
    .action(async (run: string, f: ClassifyOptions & { backend?: BackendName }) => {
      await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      runClassify(run, f, (r) => process.stdout.write((f.json ? JSON.stringify(r) : formatResult(r)) + '\n'));
    });

  addTrainFlags(
    program
      .command('compare')
      .description('train several variants of one model with the same data, seed and budget; one markdown table and shared plots')
      .argument('<model>', '.vmm file')
      .option('--variants <list>', 'comma separated: vimco, soft, enumerate, reinforce, iwae', 'vimco,soft')
      .option('--out <dir>', 'output directory (default: runs/compare-<model>)')
      .option('--eval-episodes <n>', 'test episodes per configuration in the evaluation', (v) => parsePositiveInt(v, '--eval-episodes'), 100)
      .option('--eval-samples <n>', 'importance samples in the evaluation', (v) => parsePositiveInt(v, '--eval-samples'), 200)
      .option('--memory-sizes <list>', 'memory sizes for the evaluation', '1,2,4,8,16'),
  ).action(async (model: string, f: TrainFlags & { variants: string; evalEpisodes: number; evalSamples: number; memorySizes: string }) => {
    await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
    await runCompare(model, f);
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
