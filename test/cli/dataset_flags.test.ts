import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.ts';
import { configFor } from '../../src/cli/run_config.ts';

const model = join(__dirname, '..', '..', 'models', 'vae.vmm');
const source = readFileSync(model, 'utf8');
const flags = { seed: 1, checkpointEvery: 200, validSize: 16 };

describe('train --dataset', () => {
  it('keeps built-in names, stores a path absolute (so --resume works from elsewhere), with --valid-data', () => {
    expect(configFor(model, source, { ...flags, dataset: 'omniglot' }).config.data.dataset).toBe('omniglot');
    expect(configFor(model, source, flags).config.data.dataset).toBe('mnist');
    const c = configFor(model, source, { ...flags, dataset: 'digits.npz', validData: 'more/valid.npz' }).config;
    expect(c.data.dataset).toBe(resolve('digits.npz'));
    expect(c.data.valid).toBe(resolve('more/valid.npz'));
  });

  it('--valid-data without a user data set is a usage error', () => {
    expect(() => configFor(model, source, { ...flags, validData: 'v.npz' })).toThrow(UsageError);
    expect(() => configFor(model, source, { ...flags, dataset: 'mnist', validData: 'v.npz' })).toThrow(/--valid-data goes with --dataset PATH/);
  });
});
