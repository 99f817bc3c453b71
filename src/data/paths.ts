/**
 * Where the data files live. The data never ships with the package: it is read from a
 * directory found, in order of precedence, from
 *
 *   1. an explicit path (the CLI's `--data DIR` flag),
 *   2. the environment variable `VMM_DATA`,
 *   3. the download cache of `vmm data get` (`$XDG_CACHE_HOME/vmm/data`, else `~/.cache/vmm/data`),
 *   4. `../shared/data` relative to the current working directory,
 *   5. `../shared/data` relative to the package root.
 *
 * An explicit path or `VMM_DATA` is authoritative: if the file is not there, that is an error
 * (we do not silently read some other copy). The fallbacks are tried in turn.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A user-facing error about data: a missing or malformed file. Never an internal bug. */
export class DataError extends Error {
  override readonly name = 'DataError';
  constructor(message: string) {
    super(message);
  }
}

/** The environment variable naming the data directory. */
export const DATA_ENV_VAR = 'VMM_DATA';

/** Where a candidate data directory came from. */
export type DataDirSource = 'explicit' | 'env' | 'cache' | 'cwd' | 'package';

export interface DataDirCandidate {
  readonly source: DataDirSource;
  readonly dir: string;
}

/**
 * The download cache: `$XDG_CACHE_HOME/vmm/data`, else `$HOME/.cache/vmm/data` (XDG Base
 * Directory specification). `vmm data get` writes here unless `VMM_DATA` is set.
 */
export function cacheDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  const base = xdg !== undefined && xdg !== '' ? xdg : join(env['HOME'] || homedir(), '.cache');
  return resolve(base, 'vmm', 'data');
}

/** Where `vmm data get` stores data: `$VMM_DATA` when set, else the cache directory. */
export function downloadDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[DATA_ENV_VAR];
  return fromEnv !== undefined && fromEnv !== '' ? resolve(fromEnv) : cacheDataDir(env);
}

/**
 * The package root: the nearest directory above this file holding a package.json
 * (`<pkg>/src/data/paths.ts` in a checkout, `<pkg>/dist/src/data/paths.js` when built).
 */
export const PACKAGE_ROOT: string = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let d = here; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) return resolve(here, '..', '..');
  }
})();

function describe(c: DataDirCandidate): string {
  switch (c.source) {
    case 'explicit':
      return `the directory given on the command line (--data): ${c.dir}`;
    case 'env':
      return `$${DATA_ENV_VAR}: ${c.dir}`;
    case 'cache':
      return `the download cache of \`vmm data get\`: ${c.dir}`;
    case 'cwd':
      return `../shared/data beside the working directory: ${c.dir}`;
    case 'package':
      return `../shared/data beside the package: ${c.dir}`;
  }
}

/** The candidate directories in order of precedence (explicit and env, when set, stand alone). */
export function dataDirCandidates(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): DataDirCandidate[] {
  if (explicit !== undefined && explicit !== '') return [{ source: 'explicit', dir: resolve(cwd, explicit) }];
  const fromEnv = env[DATA_ENV_VAR];
  if (fromEnv !== undefined && fromEnv !== '') return [{ source: 'env', dir: resolve(cwd, fromEnv) }];
  const shared = resolve(cwd, '..', 'shared', 'data');
  const out: DataDirCandidate[] = [
    { source: 'cache', dir: cacheDataDir(env) },
    { source: 'cwd', dir: shared },
  ];
  const pkg = resolve(PACKAGE_ROOT, '..', 'shared', 'data');
  if (pkg !== shared) out.push({ source: 'package', dir: pkg });
  return out;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The `vmm data get` set that provides data file `name`, if any. */
function providerOf(name: string): string | undefined {
  if (name.startsWith('omniglot28')) return 'omniglot';
  if (name.startsWith('binarized_mnist')) return 'binarized_mnist';
  return undefined;
}

function howToFix(name?: string): string {
  const set = name === undefined ? undefined : providerOf(name);
  const get = set
    ? `Fix: run \`vmm data get ${set}\` (downloads and converts it into ${DATA_ENV_VAR} or the cache), or pass the data directory with --data DIR, or set ${DATA_ENV_VAR}=DIR.`
    : `Fix: pass the data directory with --data DIR, or set ${DATA_ENV_VAR}=DIR; \`vmm data get omniglot\` and \`vmm data get binarized_mnist\` download the standard data sets.`;
  return get;
}

export interface ResolveOptions {
  /** The explicit directory (CLI flag), if any. */
  readonly dataDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/**
 * The data directory: the first candidate that exists (explicit/env must exist).
 * @throws DataError listing where it looked.
 */
export function resolveDataDir(opts: ResolveOptions = {}): string {
  const cands = dataDirCandidates(opts.dataDir, opts.env, opts.cwd);
  for (const c of cands) if (isDir(c.dir)) return c.dir;
  throw new DataError(
    `data directory not found. Looked in:\n` +
      cands.map((c) => `  - ${describe(c)} (no such directory)`).join('\n') +
      `\n${howToFix()}`,
  );
}

/**
 * The full path of data file `name` (e.g. `omniglot28_u8.bin.gz`): the first candidate
 * directory holding it.
 * @throws DataError naming the file, each directory looked in and how to fix it.
 */
export function resolveDataFile(name: string, opts: ResolveOptions = {}): string {
  const cands = dataDirCandidates(opts.dataDir, opts.env, opts.cwd);
  const lines: string[] = [];
  for (const c of cands) {
    const p = resolve(c.dir, name);
    if (existsSync(p)) return p;
    lines.push(`  - ${describe(c)} (${isDir(c.dir) ? `no file ${name}` : 'no such directory'})`);
  }
  throw new DataError(`data file ${name} not found. Looked in:\n${lines.join('\n')}\n${howToFix(name)}`);
}
