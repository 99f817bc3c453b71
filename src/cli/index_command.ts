/**
 * `vmm index` and the `--index` form of `vmm classify` (issue #26): hard addressing over memories
 * of up to millions of entries, through an approximate nearest-neighbour index of the entries' keys
 * (src/jobs/index_run.ts).
 */
import { Option, type Command } from 'commander';
import { BACKEND_NAMES, selectBackend, type BackendName } from '../runtime/backend.ts';
import { formatResult } from '../jobs/classify_run.ts';
import { runClassifyIndex, runIndex } from '../jobs/index_run.ts';
import { UsageError } from './errors.ts';
import { limitedFlag } from './front_end.ts';

/** A count flag that may be 0 (`--tail 0`: no estimate of the rest). */
function countFlag(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} ${v}: expected a whole number >= 0`);
    return n;
  };
}

export function registerIndexCommand(program: Command): void {
  program
    .command('index')
    .description("embed a memory once with a run's addressing nets (the guide's keys, e.g. h(mem)) and build a nearest-neighbour index over it, for vmm classify --index (resumable)")
    .argument('<run>', 'run directory')
    .requiredOption('--memory <file>', 'memory images, .npy or .npz, as for vmm classify --memory')
    .requiredOption('--out <dir>', 'index folder (keys, HNSW graph, manifest); an unfinished one is resumed, one built from another model or file is rebuilt')
    .option('--batch <n>', 'entries embedded per batch', limitedFlag('batch', '--batch'), 1024)
    .addOption(new Option('--binarize <mode>', 'sample: seeded Bernoulli draw with p = intensity (as in evaluation); threshold: ink where intensity >= 1/2').choices(['sample', 'threshold']).default('sample'))
    .option('--seed <n>', 'binarization seed', limitedFlag('seed', '--seed'), 12345)
    .option('--threads <n>', 'threads building the graph (0: all cores)', countFlag('--threads'), 0)
    .option('--quiet', 'no progress output')
    .addOption(new Option('--backend <name>', 'force a tfjs backend').choices([...BACKEND_NAMES]))
    .action(async (run: string, f: { memory: string; out: string; batch: number; binarize: 'sample' | 'threshold'; seed: number; threads: number; quiet?: boolean; backend?: BackendName }) => {
      await selectBackend({ ...(f.backend ? { force: f.backend } : {}), log: (m) => process.stderr.write(m + '\n') });
      const log = (m: string) => {
        if (!f.quiet) process.stderr.write(m + '\n');
      };
      const t0 = performance.now();
      let last = 0;
      const r = await runIndex(run, {
        memory: f.memory,
        out: f.out,
        batch: f.batch,
        binarize: f.binarize,
        seed: f.seed,
        threads: f.threads,
        progress: (p) => {
          const now = performance.now();
          if (p.phase === 'embed' && p.done < p.total && now - last < 2000) return;
          last = now;
          const s = (now - t0) / 1000;
          log(p.phase === 'embed' ? `embedded ${p.done}/${p.total} entries (${s.toFixed(1)} s)` : p.done === 0 ? `building the HNSW graph over ${p.total} keys` : `graph built (${s.toFixed(1)} s)`);
        },
      });
      if (r.restarted) log(`note: rebuilt from the first entry: ${r.restarted}`);
      else if (r.resumedAt > 0 && r.resumedAt < r.manifest.memory.count) log(`resumed at entry ${r.resumedAt}`);
      process.stdout.write(
        JSON.stringify({ out: f.out, entries: r.manifest.memory.count, learned: r.manifest.learned, dim: r.manifest.dim, embedded_now: r.embeddedNow, build_s: r.manifest.index?.buildS }) + '\n',
      );
    });
}

/** The flags `vmm classify` takes for an index (added to its command in run_commands.ts). */
export function addIndexFlags(cmd: Command): Command {
  return cmd
    .option('--index <dir>', 'classify against an index folder of vmm index instead of --memory')
    .option('--exact', 'with --index: scan every stored key instead of asking the nearest-neighbour index')
    .option('--candidates <n>', 'with --index: candidates taken from the index per query, then scored exactly', limitedFlag('top', '--candidates'), 32)
    .option('--tail <n>', 'with --index: entries outside the candidates sampled to estimate the normalizer of q(a|x)', countFlag('--tail'), 64);
}

export interface IndexClassifyFlags {
  index?: string;
  memory?: string;
  queries: string;
  exact?: boolean;
  candidates: number;
  tail: number;
  top: number;
  json?: boolean;
  binarize: 'sample' | 'threshold';
  seed: number;
}

/** `vmm classify RUN --index DIR --queries Q`: one line per query, then a summary line (JSON with --json). */
export async function classifyFromIndex(run: string, f: IndexClassifyFlags): Promise<void> {
  if (f.memory !== undefined) throw new UsageError('give either --memory FILE or --index DIR, not both');
  const { summary } = await runClassifyIndex(
    run,
    { index: f.index!, queries: f.queries, top: f.top, exact: Boolean(f.exact), candidates: f.candidates, tail: f.tail, binarize: f.binarize, seed: f.seed },
    (r) => process.stdout.write((f.json ? JSON.stringify(r) : formatResult(r)) + '\n'),
  );
  process.stdout.write(
    (f.json ? JSON.stringify(summary) : `${summary.queries} queries against ${summary.entries} entries (${summary.index === 'ann' ? 'HNSW index' : 'exact scan'}): ${summary.search_ms.toFixed(1)} ms`) + '\n',
  );
}
