/**
 * The safetensors format (github.com/huggingface/safetensors): 8 bytes of little-endian uint64
 * header length N, N bytes of JSON header `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {string: string}}`, then the tensor bytes (little-endian, C order), each
 * tensor's offsets relative to the end of the header. NumPy (`safetensors.numpy.load_file`) and
 * PyTorch (`safetensors.torch.load_file`) read it directly.
 *
 * Only float32 (`F32`) tensors are written; F32, F64, I32 and U8 are read (as float32).
 */
export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A parse or format problem, naming the file. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
}

/** Encodes float32 tensors and string metadata. The header is padded with spaces to 8 bytes. */
export function encodeSafetensors(tensors: Readonly<Record<string, NamedTensor>>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header['__metadata__'] = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name]!;
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new RangeError(`encodeSafetensors: ${name} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const name of names) {
    const d = tensors[name]!.data;
    for (let i = 0; i < d.length; i++, at += 4) view.setFloat32(at, d[i]!, true);
  }
  return out;
}

/** Decodes a safetensors buffer to float32 tensors and its metadata. */
export function decodeSafetensors(bytes: Uint8Array, file = 'weights.safetensors'): { tensors: Record<string, { shape: number[]; data: Float32Array }>; metadata: Record<string, string> } {
  const bad = (why: string) => new SafetensorsError(`${file} is not a valid safetensors file: ${why}`);
  if (bytes.length < 8) throw bad('shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.length) throw bad(`header length ${n} runs past the end of the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, n).toString('utf8'));
  } catch {
    throw bad('unreadable JSON header');
  }
  const base = 8 + n;
  const body = bytes.length - base;
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  const isObject = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (!isObject(header)) throw bad('the header is not a JSON object');
  const metadata = (header['__metadata__'] ?? {}) as Record<string, string>;
  if (!isObject(metadata) || Object.values(metadata).some((v) => typeof v !== 'string')) throw bad('__metadata__ is not an object of strings');
  const sizes: Record<string, number> = { F32: 4, F64: 8, I32: 4, U8: 1 };
  const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = e as Record<string, unknown>;
    if (!isObject(entry) || !Array.isArray(entry['shape']) || !entry['shape'].every(isCount) || !Array.isArray(entry['data_offsets']) || entry['data_offsets'].length !== 2 || !entry['data_offsets'].every(isCount)) {
      throw bad(`${name} is not a tensor entry ({dtype, shape, data_offsets})`);
    }
    const { dtype, shape, data_offsets: [b, end] } = e as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const size = sizes[dtype];
    if (!size) throw bad(`${name} has dtype ${dtype} (F32, F64, I32 or U8 expected)`);
    const count = shape.reduce((x, y) => x * y, 1);
    if (end - b !== count * size || b < 0 || end > body) throw bad(`${name}: offsets [${b}, ${end}] do not fit shape [${shape.join(', ')}] of ${dtype} in ${body} bytes`);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const at = base + b + i * size;
      data[i] = dtype === 'F32' ? view.getFloat32(at, true) : dtype === 'F64' ? view.getFloat64(at, true) : dtype === 'I32' ? view.getInt32(at, true) : view.getUint8(at);
    }
    tensors[name] = { shape, data };
  }
  return { tensors, metadata };
}
