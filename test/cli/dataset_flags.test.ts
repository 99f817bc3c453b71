import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.ts';
import { configFor } from '../../src/cli/run_config.ts';
import { irOfFile } from '../lower/helpers.ts';

const model = join(__dirname, '..', '..', 'models', 'vae.vmm');
const ir = irOfFile(model);
const flags = { seed: 1, checkpointEvery: 200, validSize: 16 };

describe('train --dataset', () => {
  it('keeps built-in names, stores a path absolute (so --resume works from elsewhere), with --valid-data', () => {
    expect(configFor(model, ir, '', { ...flags, dataset: 'omniglot' }).data.dataset).toBe('omniglot');
    expect(configFor(model, ir, '', flags).data.dataset).toBe('mnist');
    const c = configFor(model, ir, '', { ...flags, dataset: 'digits.npz', validData: 'more/valid.npz' });
    expect(c.data.dataset).toBe(resolve('digits.npz'));
    expect(c.data.valid).toBe(resolve('more/valid.npz'));
  });

  it('--valid-data without a user data set is a usage error', () => {
    expect(() => configFor(model, ir, '', { ...flags, validData: 'v.npz' })).toThrow(UsageError);
    expect(() => configFor(model, ir, '', { ...flags, dataset: 'mnist', validData: 'v.npz' })).toThrow(/--valid-data goes with --dataset PATH/);
  });
});
