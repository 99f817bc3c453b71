import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_ENV_VAR, DataError, PACKAGE_ROOT, dataDirCandidates, resolveDataDir, resolveDataFile } from '../../src/data/paths.ts';

const shared = resolve(PACKAGE_ROOT, '..', 'shared', 'data');
// A nested directory, so that `<cwd>/../shared/data` is inside the temporary tree and can never be
// the package's own fallback (e.g. when the checkout itself sits directly in the temp directory).
const tmpRoot = mkdtempSync(join(tmpdir(), 'vmm-paths-'));
const tmp = join(tmpRoot, 'cwd');
mkdirSync(tmp);
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

describe('data paths', () => {
  it('the package root holds package.json', () => {
    expect(resolve(PACKAGE_ROOT, 'package.json')).toMatch(/package\.json$/);
    expect(dataDirCandidates(undefined, {}, PACKAGE_ROOT).map((c) => c.source)).toEqual(['cwd']);
  });

  it('falls back to ../shared/data beside the working directory, then beside the package', () => {
    expect(resolveDataFile('omniglot28_index.json', { env: {}, cwd: PACKAGE_ROOT })).toBe(join(shared, 'omniglot28_index.json'));
    // From an unrelated cwd only the package fallback can find it.
    const cands = dataDirCandidates(undefined, {}, tmp);
    expect(cands.map((c) => c.source)).toEqual(['cwd', 'package']);
    expect(resolveDataFile('omniglot28_index.json', { env: {}, cwd: tmp })).toBe(join(shared, 'omniglot28_index.json'));
    expect(resolveDataDir({ env: {}, cwd: tmp })).toBe(shared);
  });

  it('an explicit directory beats VMM_DATA, which beats the fallbacks', () => {
    writeFileSync(join(tmp, 'x.bin'), 'x');
    expect(resolveDataFile('x.bin', { dataDir: tmp, env: { [DATA_ENV_VAR]: shared } })).toBe(join(tmp, 'x.bin'));
    expect(resolveDataFile('x.bin', { env: { [DATA_ENV_VAR]: tmp }, cwd: PACKAGE_ROOT })).toBe(join(tmp, 'x.bin'));
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
    expect(() => resolveDataFile('omniglot28_index.json', { env: { [DATA_ENV_VAR]: join(tmp, 'nope') } })).toThrow(
      /VMM_DATA.*no such directory/s,
    );
  });

  it('lists every fallback it tried', () => {
    expect(() => resolveDataFile('no-such-file.bin', { env: {}, cwd: tmp })).toThrow(/beside the working directory.*beside the package/s);
  });
});
