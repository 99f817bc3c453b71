// Full data (npm run test:data): the lookup finds the full files, and the `../shared/data`
// fallback finds the developers' copy from a checkout beside it.
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveDataDir, resolveDataFile } from '../../src/data/paths.ts';

const dir = resolveDataDir();
const isShared = basename(dir) === 'data' && basename(dirname(dir)) === 'shared';

describe('data paths with the full data', () => {
  it('resolves every file in one data directory', () => {
    for (const f of ['omniglot28_index.json', 'omniglot28_u8.bin.gz', 'raw/images_background_small1.zip']) {
      expect(resolveDataFile(f)).toBe(join(dir, f));
    }
  });

  it.runIf(isShared)('../shared/data beside the working directory is found without VMM_DATA or a cache', () => {
    const env = { HOME: '/nonexistent-home' };
    const checkout = join(dirname(dirname(dir)), 'some-checkout');
    expect(resolveDataFile('omniglot28_index.json', { env, cwd: checkout })).toBe(join(dir, 'omniglot28_index.json'));
  });
});
