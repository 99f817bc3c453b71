/**
 * Checkpoints: variables, optimizer state, RNG state, step and JSON metadata, saved to a directory
 * so that a killed write never corrupts the previous checkpoint.
 *
 * Layout: `DIR/checkpoint.safetensors`, one file, replaced atomically (written to a temporary
 * file in the same directory, fsynced, renamed over the old one, directory fsynced). Format:
 * safetensors (src/runtime/safetensors.ts), so the weights load in NumPy and PyTorch:
 *
 *   tensors     the variables under their model names (`net/h/0/w`, `param/w`), float32;
 *               the optimizer's slots as `optimizer/<slot>/<variable>` (`optimizer/m/net/h/0/w`)
 *   metadata    `format` = vmm-checkpoint, `version` = 3, `createdAt`, `step`, `crc32`, and JSON
 *               strings `optimizer` ({config, step, slots}), `rng`, `metadata`
 *
 * `crc32` is the CRC-32 of the whole file with its own ten digits written as zeros, so it covers
 * the header (every metadata value, every tensor's shape and offsets) as well as the tensor bytes;
 * the metadata's JSON is then validated against its schema (src/runtime/checkpoint_schema.ts), so
 * a checkpoint is checked whole before anything is assigned (issue #22). Version 2 (whose `crc32`
 * covers the tensor bytes only) is still read.
 *
 * Reading also accepts the earlier format, `DIR/checkpoint.vmmc` (version 1):
 *
 *   bytes 0..7    magic "VMMCKPT1"
 *   bytes 8..11   header length H (uint32, little-endian)
 *   bytes 12..    H bytes of JSON header, then zero padding to a multiple of 4
 *   then          the blob: float32 little-endian values of every tensor, back to back
 *
 * whose header lists each tensor as `{shape, offset, length}` (in float32 elements from the start
 * of the blob) and carries the blob's CRC-32.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState, ResolvedOptimizerConfig, TensorData } from './optimizer.ts';
import type { RngState } from '../random/rng.ts';
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type NamedTensor } from './safetensors.ts';
import { faultPoint } from './fault.ts';
import { mkdirpSync } from '../report/atomic.ts';
import { optimizerMetaProblem, rngStateProblem } from './checkpoint_schema.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
/** The version-1 checkpoint file, still read. */
export const LEGACY_CHECKPOINT_FILE = 'checkpoint.vmmc';
const MAGIC = 'VMMCKPT1';
const VERSION = 1;
const ST_VERSION = '3';
/** The previous safetensors version: the same layout, its CRC over the tensor bytes only. */
const ST_VERSION_TENSOR_CRC = '2';
const CRC_PLACEHOLDER = '0000000000';
const OPTIMIZER_PREFIX = 'optimizer/';

/** A checkpoint as plain data. */
export interface CheckpointData {
  variables: Record<string, TensorData>;
  optimizer?: OptimizerState;
  rng?: RngState;
  step: number;
  metadata?: unknown;
}

interface TensorRef {
  shape: number[];
  offset: number;
  length: number;
}

interface Header {
  format: 'vmm-checkpoint';
  version: number;
  createdAt: string;
  step: number;
  rng?: RngState;
  metadata?: unknown;
  variables: Record<string, TensorRef>;
  optimizer?: { config: ResolvedOptimizerConfig; step: number; slots: Record<string, Record<string, TensorRef>> };
  blobElements: number;
  crc32: number;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

if (endianness() !== 'LE') {
  // Float32Array views are platform-endian; every platform Node supports in practice is LE.
  throw new CheckpointError('checkpoints assume a little-endian machine');
}

/** The checkpoint file inside `dir`. */
export function checkpointFile(dir: string): string {
  return join(dir, CHECKPOINT_FILE);
}

/** Writes `ckpt` to `dir` atomically (creating `dir`). */
export function writeCheckpoint(dir: string, ckpt: CheckpointData): void {
  if (!Number.isInteger(ckpt.step) || ckpt.step < 0) throw new CheckpointError(`writeCheckpoint: bad step ${ckpt.step}`);
  const tensors: Record<string, NamedTensor> = {};
  const put = (name: string, what: string, t: TensorData) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new CheckpointError(`writeCheckpoint: ${what} has ${t.data.length} values for shape [${t.shape}]`);
    if (name in tensors) throw new CheckpointError(`writeCheckpoint: two tensors named ${name}`);
    tensors[name] = { shape: [...t.shape], data: t.data };
  };
  for (const [name, t] of Object.entries(ckpt.variables)) put(name, name, t);
  if (ckpt.optimizer) {
    for (const [slot, m] of Object.entries(ckpt.optimizer.slots)) {
      for (const [name, t] of Object.entries(m)) put(`${OPTIMIZER_PREFIX}${slot}/${name}`, `${slot} of ${name}`, t);
    }
  }
  const meta: Record<string, string> = {
    format: 'vmm-checkpoint',
    version: ST_VERSION,
    createdAt: new Date().toISOString(),
    step: String(ckpt.step),
  };
  if (ckpt.optimizer) {
    // Slot names (including slots with no tensors) and the optimizer's own settings.
    meta['optimizer'] = JSON.stringify({ config: ckpt.optimizer.config, step: ckpt.optimizer.step, slots: Object.keys(ckpt.optimizer.slots) });
  }
  if (ckpt.rng) meta['rng'] = JSON.stringify(ckpt.rng);
  if (ckpt.metadata !== undefined) meta['metadata'] = JSON.stringify(ckpt.metadata);
  // The CRC-32 of the whole file (its own digits zero) goes in the header: encode, then patch.
  const bytes = encodeSafetensors(tensors, { ...meta, crc32: CRC_PLACEHOLDER });
  patchChecksum(bytes, String(crc32(bytes)).padStart(10, '0'));

  mkdirpSync(dir);
  removeStaleTemporaries(dir);
  const target = checkpointFile(dir);
  const tmp = join(dir, `.${CHECKPOINT_FILE}.${process.pid}.${Math.floor(Math.random() * 0x100000000).toString(16)}.tmp`);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    faultPoint('checkpoint:written');
    renameSync(tmp, target);
    faultPoint('checkpoint:renamed');
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  // A version-1 file beside it would be stale now.
  rmSync(join(dir, LEGACY_CHECKPOINT_FILE), { force: true });
  try {
    // Make the rename itself durable (not possible on every platform; best effort).
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // ignore
  }
}

/** Where the ten digits of `"crc32":"..."` are in the header of a safetensors checkpoint, or -1. */
function checksumAt(bytes: Uint8Array, digits: string): number {
  const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true));
  const key = Buffer.from(`"crc32":"${digits}"`, 'latin1');
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(headerEnd, bytes.length)).indexOf(key);
  return at < 0 ? -1 : at + key.length - 11;
}

/** Writes `digits` over the zeros of the checksum placeholder. */
function patchChecksum(bytes: Uint8Array, digits: string): void {
  const at = checksumAt(bytes, CRC_PLACEHOLDER);
  if (at < 0) throw new CheckpointError('writeCheckpoint: the checksum placeholder is missing from the header');
  bytes.set(Buffer.from(digits, 'latin1'), at);
}

/** Whether the whole-file checksum of a version-3 checkpoint holds. */
function wholeFileChecksumHolds(bytes: Uint8Array, digits: string): boolean {
  if (!/^\d{10}$/.test(digits)) return false;
  const at = checksumAt(bytes, digits);
  if (at < 0) return false;
  const zeroed = Uint8Array.from(bytes);
  zeroed.set(Buffer.from(CRC_PLACEHOLDER, 'latin1'), at);
  return String(crc32(zeroed)).padStart(10, '0') === digits;
}

/** Deletes temporary files left in `dir` by writers that were killed (their process is gone). */
function removeStaleTemporaries(dir: string): void {
  const re = new RegExp(`^\\.${CHECKPOINT_FILE.replace('.', '\\.')}\\.(\\d+)\\.[0-9a-f]+\\.tmp$`);
  for (const f of readdirSync(dir)) {
    const m = re.exec(f);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = (e as { code?: string }).code === 'EPERM';
      }
    }
    if (!alive) rmSync(join(dir, f), { force: true });
  }
}

function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * Reads the checkpoint in `dir` (safetensors, else the version-1 `checkpoint.vmmc`); a missing,
 * truncated or corrupted file is a CheckpointError.
 */
export function readCheckpoint(dir: string): CheckpointData {
  const file = checkpointFile(dir);
  if (existsSync(file) || !existsSync(join(dir, LEGACY_CHECKPOINT_FILE))) return readSafetensorsCheckpoint(dir, file);
  return readLegacyCheckpoint(dir, join(dir, LEGACY_CHECKPOINT_FILE));
}

/** The bytes of a checkpoint file; a missing or unreadable one is a CheckpointError naming it. */
function readCheckpointBytes(dir: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new CheckpointError(code === 'ENOENT' ? `no checkpoint in ${dir}` : `cannot read ${file}: ${(e as Error).message}`);
  }
}

function readSafetensorsCheckpoint(dir: string, file: string): CheckpointData {
  const buf = readCheckpointBytes(dir, file);
  const bad = (why: string) => new CheckpointError(`${file} is not a valid checkpoint: ${why}`);
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), file);
  } catch (e) {
    if (e instanceof SafetensorsError) throw bad(e.message.replace(`${file} is not a valid safetensors file: `, ''));
    throw e;
  }
  const { tensors, metadata: meta } = decoded;
  if (meta['format'] !== 'vmm-checkpoint' || (meta['version'] !== ST_VERSION && meta['version'] !== ST_VERSION_TENSOR_CRC)) {
    throw bad(`format ${meta['format']} version ${meta['version']}`);
  }
  if (meta['version'] === ST_VERSION) {
    if (!wholeFileChecksumHolds(buf, meta['crc32'] ?? '')) throw bad('checksum mismatch');
  } else {
    const dataStart = 8 + Number(buf.readBigUInt64LE(0));
    if (String(crc32(buf.subarray(dataStart))).padStart(10, '0') !== meta['crc32']) throw bad('checksum mismatch');
  }
  const json = <T>(key: string, problem: (x: unknown) => string | undefined): T | undefined => {
    if (meta[key] === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(meta[key]!);
    } catch {
      throw bad(`unreadable ${key} metadata`);
    }
    const p = problem(value);
    if (p) throw bad(`${key} metadata: ${p}`);
    return value as T;
  };
  const step = Number(meta['step']);
  if (!/^\d+$/.test(meta['step'] ?? '') || !Number.isSafeInteger(step)) throw bad(`step ${JSON.stringify(meta['step'])} is not a whole number`);
  const variables: Record<string, TensorData> = {};
  const slots: Record<string, Record<string, TensorData>> = {};
  const opt = json<{ config: ResolvedOptimizerConfig; step: number; slots: string[] }>('optimizer', optimizerMetaProblem);
  for (const slot of opt?.slots ?? []) slots[slot] = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith(OPTIMIZER_PREFIX)) {
      const rest = name.slice(OPTIMIZER_PREFIX.length);
      const cut = rest.indexOf('/');
      const slot = rest.slice(0, cut);
      if (cut < 0 || !opt || !(slot in slots)) throw bad(`tensor ${name} belongs to no optimizer slot`);
      slots[slot]![rest.slice(cut + 1)] = { shape: t.shape, data: t.data };
    } else variables[name] = { shape: t.shape, data: t.data };
  }
  const out: CheckpointData = { variables, step };
  if (opt) out.optimizer = { config: opt.config, step: opt.step, slots };
  const rng = json<RngState>('rng', rngStateProblem);
  if (rng) out.rng = rng;
  const metadata = json<unknown>('metadata', () => undefined);
  if (metadata !== undefined) out.metadata = metadata;
  return out;
}

function readLegacyCheckpoint(dir: string, file: string): CheckpointData {
  const buf = readCheckpointBytes(dir, file);
  const bad = (why: string) => new CheckpointError(`${file} is not a valid checkpoint: ${why}`);
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) throw bad('wrong magic');
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length) throw bad('truncated header');
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + hlen)) as Header;
  } catch {
    throw bad('unreadable header');
  }
  if (header.format !== 'vmm-checkpoint' || header.version !== VERSION) throw bad(`format ${header.format} version ${header.version}`);
  const start = 12 + hlen + ((4 - ((12 + hlen) % 4)) % 4);
  const bytes = header.blobElements * 4;
  if (start + bytes !== buf.length) throw bad(`blob has ${buf.length - start} bytes, header says ${bytes}`);
  const blobBytes = buf.subarray(start, start + bytes);
  if (crc32(blobBytes) !== header.crc32) throw bad('checksum mismatch');
  // Copy into an aligned buffer, then hand out copies per tensor.
  const blob = new Float32Array(header.blobElements);
  new Uint8Array(blob.buffer).set(blobBytes);
  const get = (r: TensorRef): TensorData => {
    if (r.offset < 0 || r.offset + r.length > blob.length) throw bad('tensor out of range');
    return { shape: [...r.shape], data: blob.slice(r.offset, r.offset + r.length) };
  };
  const variables: Record<string, TensorData> = {};
  for (const [name, r] of Object.entries(header.variables)) variables[name] = get(r);
  const out: CheckpointData = { variables, step: header.step };
  if (header.optimizer) {
    const slots: Record<string, Record<string, TensorData>> = {};
    for (const [slot, m] of Object.entries(header.optimizer.slots)) {
      slots[slot] = {};
      for (const [name, r] of Object.entries(m)) slots[slot][name] = get(r);
    }
    out.optimizer = { config: header.optimizer.config, step: header.optimizer.step, slots };
  }
  if (header.rng) out.rng = header.rng;
  if (header.metadata !== undefined) out.metadata = header.metadata;
  return out;
}

type VariableMap = ReadonlyMap<string, tf.Variable> | Readonly<Record<string, tf.Variable>>;

function entries(m: VariableMap): [string, tf.Variable][] {
  return m instanceof Map ? [...(m as ReadonlyMap<string, tf.Variable>).entries()] : Object.entries(m as Readonly<Record<string, tf.Variable>>);
}

/**
 * Reads variables from the device as plain data. Asynchronous, as reads must be on webgpu
 * (src/kernels/readback.ts); the caller must not update the variables until it resolves.
 */
export async function snapshotVariables(vars: VariableMap): Promise<Record<string, TensorData>> {
  const out: Record<string, TensorData> = {};
  for (const [name, v] of entries(vars)) {
    if (v.dtype !== 'float32') throw new CheckpointError(`snapshotVariables: ${name} is ${v.dtype}; checkpoints hold float32`);
    out[name] = { shape: [...v.shape], data: Float32Array.from((await v.data()) as Float32Array) };
  }
  return out;
}

/**
 * Checks that every variable of `vars` is in `data` with the same shape (entries the model does
 * not have are ignored); throws a CheckpointError naming the first problems.
 */
export function checkVariables(vars: VariableMap, data: Readonly<Record<string, TensorData>>, where = 'checkpoint'): void {
  const list = entries(vars);
  const missing = list.filter(([n]) => !data[n]).map(([n]) => n);
  if (missing.length) {
    throw new CheckpointError(`${where} lacks ${missing.length} variable(s) of this model: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
  }
  for (const [name, v] of list) {
    const d = data[name]!;
    if (d.shape.length !== v.shape.length || d.shape.some((s, i) => s !== v.shape[i])) {
      throw new CheckpointError(`${where}: ${name} has shape [${d.shape}], the model's is [${v.shape}]`);
    }
  }
}

/** Assigns checkpoint values to `vars`, after `checkVariables` (nothing is assigned if it throws). */
export function restoreVariables(vars: VariableMap, data: Readonly<Record<string, TensorData>>, where = 'checkpoint'): void {
  checkVariables(vars, data, where);
  for (const [name, v] of entries(vars)) {
    const d = data[name]!;
    tf.tidy(() => v.assign(tf.tensor(d.data, d.shape, 'float32')));
  }
}

/**
 * Saves `variables`, the optimizer's state (if given), and `metadata` to `dir` atomically.
 * `extra.step` defaults to the optimizer's step (else 0).
 */
export async function saveCheckpoint(
  dir: string,
  variables: VariableMap,
  optimizer?: Optimizer,
  metadata?: unknown,
  extra: { step?: number; rng?: RngState } = {},
): Promise<void> {
  const step = extra.step ?? optimizer?.step ?? 0;
  const snapshot = await snapshotVariables(variables);
  const state = optimizer ? await optimizer.exportState() : undefined;
  writeCheckpoint(dir, {
    variables: snapshot,
    ...(state ? { optimizer: state } : {}),
    ...(extra.rng ? { rng: extra.rng } : {}),
    step,
    ...(metadata !== undefined ? { metadata } : {}),
  });
}

/**
 * Loads the checkpoint in `dir` into `variables` (and the optimizer, if given: the checkpoint must
 * then hold optimizer state) and returns its metadata. Nothing is assigned unless everything fits,
 * the metadata included when `metadataProblem` is given (it says what is wrong with it, or undefined).
 */
export function loadCheckpoint(dir: string, variables: VariableMap, optimizer?: Optimizer, metadataProblem?: (metadata: unknown) => string | undefined): unknown {
  const ck = readCheckpoint(dir);
  const where = `checkpoint in ${dir}`;
  if (optimizer && !ck.optimizer) throw new CheckpointError(`the ${where} has no optimizer state (it holds final weights only)`);
  const problem = metadataProblem?.(ck.metadata);
  if (problem) throw new CheckpointError(`${checkpointFile(dir)} is not a valid checkpoint of this run: ${problem}`);
  checkVariables(variables, ck.variables, where);
  // importState validates the whole state before it assigns anything; what it refuses is the checkpoint's fault.
  if (optimizer) {
    try {
      optimizer.importState(ck.optimizer!);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('optimizer:')) throw new CheckpointError(`the ${where} does not fit this run's optimizer (${e.message.slice('optimizer: '.length)})`);
      throw e;
    }
  }
  restoreVariables(variables, ck.variables, where);
  return ck.metadata;
}
