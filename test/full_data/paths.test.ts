// Full data (npm run test:data): the fallback to ../shared/data finds the developers' copy.
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT, resolveDataFile } from '../../src/data/paths.ts';

const shared = resolve(PACKAGE_ROOT, '..', 'shared', 'data');

describe('data paths with ../shared/data', () => {
  it('finds the shared files beside the package from any working directory', () => {
    const env = { HOME: '/nonexistent-home' };
    expect(resolveDataFile('omniglot28_index.json', { env, cwd: PACKAGE_ROOT })).toBe(join(shared, 'omniglot28_index.json'));
    expect(resolveDataFile('omniglot28_index.json', { env, cwd: '/' })).toBe(join(shared, 'omniglot28_index.json'));
  });
});
