import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DATA_ENV_VAR,
  DataError,
  PACKAGE_ROOT,
  cacheDataDir,
  dataDirCandidates,
  downloadDataDir,
  resolveDataDir,
  resolveDataFile,
} from '../../src/data/paths.ts';

// Everything lives in a temporary tree: <root>/cwd is the working directory, <root>/shared/data
// its `../shared/data`, <root>/home the home directory (cache <root>/home/.cache/vmm/data). No test
// here reads the real ../shared beside the checkout, which a fresh clone does not have.
const tmpRoot = mkdtempSync(join(tmpdir(), 'vmm-paths-'));
const tmp = join(tmpRoot, 'cwd');
const shared = join(tmpRoot, 'shared', 'data');
const home = join(tmpRoot, 'home');
const cache = join(home, '.cache', 'vmm', 'data');
mkdirSync(tmp);
mkdirSync(shared, { recursive: true });
writeFileSync(join(shared, 'omniglot28_index.json'), '{}');
const env = { HOME: home };
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

describe('data paths', () => {
  it('the package root holds package.json', () => {
    expect(resolve(PACKAGE_ROOT, 'package.json')).toMatch(/package\.json$/);
    expect(dataDirCandidates(undefined, env, PACKAGE_ROOT).map((c) => c.source)).toEqual(['cache', 'cwd']);
  });

  it('the cache is $XDG_CACHE_HOME/vmm/data, else ~/.cache/vmm/data; downloads go to $VMM_DATA first', () => {
    expect(cacheDataDir(env)).toBe(cache);
    expect(cacheDataDir({ ...env, XDG_CACHE_HOME: join(tmpRoot, 'xdg') })).toBe(join(tmpRoot, 'xdg', 'vmm', 'data'));
    expect(downloadDataDir(env)).toBe(cache);
    expect(downloadDataDir({ ...env, [DATA_ENV_VAR]: tmp })).toBe(tmp);
  });

  it('falls back to the cache, then ../shared/data beside the working directory, then beside the package', () => {
    const cands = dataDirCandidates(undefined, env, tmp);
    expect(cands).toEqual([
      { source: 'cache', dir: cache },
      { source: 'cwd', dir: shared },
      { source: 'package', dir: resolve(PACKAGE_ROOT, '..', 'shared', 'data') },
    ]);
    expect(resolveDataFile('omniglot28_index.json', { env, cwd: tmp })).toBe(join(shared, 'omniglot28_index.json'));
    expect(resolveDataDir({ env, cwd: tmp })).toBe(shared);
    // Once the cache holds the file, it wins over ../shared/data.
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, 'omniglot28_index.json'), '{}');
    expect(resolveDataFile('omniglot28_index.json', { env, cwd: tmp })).toBe(join(cache, 'omniglot28_index.json'));
    rmSync(join(cache, 'omniglot28_index.json'));
  });

  it('an explicit directory beats VMM_DATA, which beats the fallbacks', () => {
    writeFileSync(join(tmp, 'x.bin'), 'x');
    expect(resolveDataFile('x.bin', { dataDir: tmp, env: { [DATA_ENV_VAR]: shared } })).toBe(join(tmp, 'x.bin'));
    expect(resolveDataFile('x.bin', { env: { ...env, [DATA_ENV_VAR]: tmp }, cwd: PACKAGE_ROOT })).toBe(join(tmp, 'x.bin'));
    expect(dataDirCandidates('rel', {}, '/a/b')).toEqual([{ source: 'explicit', dir: '/a/b/rel' }]);
  });

  it('an explicit directory or VMM_DATA without the file is an error, not a silent fallback', () => {
    const err = (() => {
      try {
        resolveDataFile('omniglot28_index.json', { dataDir: tmp });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(DataError);
    const msg = (err as DataError).message;
    expect(msg).toContain('omniglot28_index.json');
    expect(msg).toContain(tmp);
    expect(msg).toContain('--data');
    expect(msg).toContain(DATA_ENV_VAR);
    // The command that fixes it.
    expect(msg).toContain('vmm data get omniglot');
    expect(() => resolveDataFile('omniglot28_index.json', { env: { [DATA_ENV_VAR]: join(tmp, 'nope') } })).toThrow(
      /VMM_DATA.*no such directory/s,
    );
    expect(() => resolveDataFile('binarized_mnist_test_bits.bin.gz', { dataDir: tmp })).toThrow(/vmm data get binarized_mnist/);
  });

  it('lists every fallback it tried', () => {
    expect(() => resolveDataFile('no-such-file.bin', { env, cwd: tmp })).toThrow(
      /download cache.*beside the working directory.*beside the package/s,
    );
  });
});
