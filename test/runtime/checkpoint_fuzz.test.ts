/**
 * Checkpoints are validated whole (issue #22): the checksum covers the header as well as the
 * tensors, and a header that is valid JSON of the wrong shape, re-checksummed so that it passes,
 * is one line naming the file on `vmm train --resume`, never an internal error (fuzzed).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as run } from '../cli/run_cli.ts';
import { CheckpointError, checkpointFile, readCheckpoint } from '../../src/runtime/checkpoint.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src/runtime/safetensors.ts';

const GMM = join(__dirname, '..', '..', 'models', 'gmm.vmm');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-ckfuzz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const base = join(tmp, 'base');
const file = (run: string) => checkpointFile(join(run, 'checkpoint'));

/** A checkpoint file with `metadata` in its header and a checksum that holds (the format: CRC-32 of the file with its own digits zero). */
function encodeWithChecksum(tensors: Record<string, { shape: number[]; data: Float32Array }>, metadata: Record<string, string>): Uint8Array {
  const bytes = encodeSafetensors(tensors, { ...metadata, crc32: '0000000000' });
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = text.indexOf('"crc32":"0000000000"') + '"crc32":"'.length;
  bytes.set(Buffer.from(String(crc32(bytes)).padStart(10, '0'), 'latin1'), at);
  return bytes;
}

/** Every path into a JSON value (objects and arrays), the value itself included. */
function paths(x: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(x)) x.forEach((v, i) => out.push(...paths(v, [...at, i])));
  else if (x !== null && typeof x === 'object') for (const [k, v] of Object.entries(x)) out.push(...paths(v, [...at, k]));
  return out;
}

function replaced(x: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = (Array.isArray(x) ? [...x] : { ...(x as object) }) as Record<string | number, unknown>;
  const [head, ...rest] = path;
  if (value === undefined && rest.length === 0) delete copy[head!];
  else copy[head!] = replaced(copy[head!], rest, value);
  return copy;
}

describe('checkpoint validation', () => {
  beforeAll(async () => {
    const r = await run('train', GMM, '--out', base, '--steps', '2', '--checkpoint-every', '1', '--batch', '2', '--valid-size', '2', '--quiet', '--backend', 'wasm');
    expect(r.code, r.err).toBe(0);
  }, 30_000);

  it('the checksum covers the header: one changed metadata digit is a checksum mismatch', () => {
    const dir = join(tmp, 'header-flip');
    cpSync(base, dir, { recursive: true });
    const bytes = readFileSync(file(dir));
    const text = bytes.toString('latin1');
    const at = text.indexOf('\\"step\\":') + '\\"step\\":'.length;
    expect(at).toBeGreaterThan(20);
    bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
    writeFileSync(file(dir), bytes);
    expect(() => readCheckpoint(join(dir, 'checkpoint'))).toThrow(/checksum mismatch/);
  });

  it('a header of valid JSON with wrong fields (re-checksummed) is one clear line on --resume, never an internal error', async () => {
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file(base))));
    const keys = ['metadata', 'optimizer', 'rng', 'step'].filter((k) => metadata[k] !== undefined);
    const targets = keys.flatMap((key) => {
      const value: unknown = key === 'step' ? metadata[key] : JSON.parse(metadata[key]!);
      return paths(value).map((path) => ({ key, path, value }));
    });
    let n = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...targets), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)), async ({ key, path, value }, junk) => {
        const dir = join(tmp, `fuzz-${n++}`);
        cpSync(base, dir, { recursive: true });
        const mutated = replaced(value, path, junk);
        const meta = { ...metadata };
        if (mutated === undefined) delete meta[key];
        else meta[key] = key === 'step' && typeof mutated === 'string' ? mutated : JSON.stringify(mutated);
        writeFileSync(file(dir), encodeWithChecksum(tensors, meta));
        const r = await run('train', '--resume', dir, '--steps', '3', '--quiet', '--backend', 'wasm');
        const why = `${key} ${JSON.stringify(path)} := ${JSON.stringify(junk)}\n${r.err}`;
        expect(r.err, why).not.toContain('internal error');
        expect(r.err, why).not.toMatch(/\n\s+at /);
        if (r.code !== 0) {
          refused++;
          expect(r.code, why).toBe(1);
          expect(r.err, why).toContain(file(dir));
        }
        rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: 60, seed: 22 },
    );
    expect(refused).toBeGreaterThan(20);
  }, 60_000);

  it('readCheckpoint names the field: an rng that is not four words, optimizer slots that are not a list', () => {
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file(base))));
    const dir = join(tmp, 'named');
    cpSync(base, dir, { recursive: true });
    const opt = JSON.parse(metadata['optimizer']!) as Record<string, unknown>;
    writeFileSync(file(dir), encodeWithChecksum(tensors, { ...metadata, optimizer: JSON.stringify({ ...opt, slots: 5 }) }));
    expect(() => readCheckpoint(join(dir, 'checkpoint'))).toThrow(CheckpointError);
    expect(() => readCheckpoint(join(dir, 'checkpoint'))).toThrow(/optimizer metadata: slots is 5, not a list of slot names/);
    writeFileSync(file(dir), encodeWithChecksum(tensors, { ...metadata, rng: JSON.stringify({ s: [1, 2] }) }));
    expect(() => readCheckpoint(join(dir, 'checkpoint'))).toThrow(/rng metadata: rng.s is \[1,2\], not four 32-bit words/);
  });
});
