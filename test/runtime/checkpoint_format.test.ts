/**
 * The checkpoint file is safetensors (weights readable from NumPy/PyTorch; optimizer slots as
 * `optimizer/<slot>/<variable>`, the rest in the metadata), and the version-1 `checkpoint.vmmc`
 * still reads.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE, readCheckpoint, writeCheckpoint } from '../../src/runtime/checkpoint.ts';

const tmp = mkdtempSync(join(tmpdir(), 'vmm-ckfmt-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const LEGACY = join(__dirname, 'fixtures', 'legacy_checkpoint');
const optimizer = {
  config: { kind: 'adam' as const, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, momentum: 0, clipNorm: null },
  step: 12,
  slots: { m: { 'net/h/0/w': { shape: [2, 3], data: new Float32Array(6).fill(0.25) } }, v: {} },
};

describe('checkpoint format', () => {
  it('is safetensors: variables by name, optimizer slots prefixed, the rest in string metadata', () => {
    const dir = join(tmp, 'st');
    writeCheckpoint(dir, {
      variables: { 'net/h/0/w': { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) } },
      optimizer,
      step: 12,
      metadata: { note: 'hi' },
    });
    expect(readdirSync(dir)).toEqual([CHECKPOINT_FILE]);
    // Read by the specification, without our decoder: u64 header length, JSON header, data.
    const bytes = readFileSync(join(dir, CHECKPOINT_FILE));
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.toString('utf8', 8, 8 + n)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & {
      __metadata__: Record<string, string>;
    };
    expect(Object.keys(header).sort()).toEqual(['__metadata__', 'net/h/0/w', 'optimizer/m/net/h/0/w']);
    const w = header['net/h/0/w']!;
    expect([w.dtype, w.shape, w.data_offsets[1] - w.data_offsets[0]]).toEqual(['F32', [2, 3], 24]);
    expect(Array.from({ length: 6 }, (_, i) => bytes.readFloatLE(8 + n + w.data_offsets[0] + 4 * i))).toEqual([1, 2, 3, 4, 5, 6.5]);
    const meta = header.__metadata__;
    expect([meta['format'], meta['version'], meta['step']]).toEqual(['vmm-checkpoint', '3', '12']);
    expect(JSON.parse(meta['metadata']!)).toEqual({ note: 'hi' });
    expect(JSON.parse(meta['optimizer']!)).toEqual({ config: optimizer.config, step: 12, slots: ['m', 'v'] });
    expect(Object.values(meta).every((v) => typeof v === 'string')).toBe(true);
    const ck = readCheckpoint(dir);
    expect(ck.optimizer).toEqual({ config: optimizer.config, step: 12, slots: { m: { 'net/h/0/w': { shape: [2, 3], data: new Float32Array(6).fill(0.25) } }, v: {} } });
  });

  it('reads the version-1 checkpoint.vmmc, and a new write replaces it', () => {
    const dir = join(tmp, 'legacy');
    cpSync(LEGACY, dir, { recursive: true });
    expect(readdirSync(dir)).toEqual([LEGACY_CHECKPOINT_FILE]);
    const ck = readCheckpoint(dir);
    expect(ck.step).toBe(12);
    expect(Array.from(ck.variables['net/h/0/w']!.data)).toEqual([1, 2, 3, 4, 5, 6.5]);
    expect(Object.is(ck.variables['param/z']!.data[0], -0)).toBe(true);
    expect(ck.optimizer!.slots['m']!['net/h/0/w']!.data).toEqual(new Float32Array(6).fill(0.25));
    expect(ck.metadata).toEqual({ note: 'written by the checkpoint.vmmc format (VMMCKPT1)' });
    writeCheckpoint(dir, { ...ck, step: 13 });
    expect(readdirSync(dir)).toEqual([CHECKPOINT_FILE]);
    expect(existsSync(join(dir, LEGACY_CHECKPOINT_FILE))).toBe(false);
    const again = readCheckpoint(dir);
    expect(again.step).toBe(13);
    expect(again.variables).toEqual(ck.variables);
    expect(again.rng).toEqual(ck.rng);
  });
});
