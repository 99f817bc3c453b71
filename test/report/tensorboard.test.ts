/**
 * TensorBoard event files, read back by an independent reader: a small Python program (TFRecord
 * framing, CRC-32C computed in Python, protobuf decoded by hand from the public .proto field
 * numbers) that shares no code with the writer. Skipped where no python3 is installed.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c, encodeEvent, eventFiles, EventFileWriter, eventStep, maskedCrc32c, readTfRecords, tfRecord, truncateEventFiles } from '../../src/report/tensorboard.ts';
import { encodeImageGrid } from '../../src/report/png.ts';
import { selectBackend } from '../../src/runtime/backend.ts';
import { RunDir } from '../../src/jobs/run_dir.ts';
import { trainLoop } from '../../src/jobs/train_loop.ts';
import { plotRuns } from '../../src/jobs/plot_runs.ts';
import { runCli } from '../cli/run_cli.ts';
import { irOfFile } from '../lower/helpers.ts';
import { configOf, MODELS } from '../lower/suites/training.ts';

const READER = String.raw`
import json, struct, sys

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

def varint(b, o):
    x = 0; s = 0
    while True:
        c = b[o]; o += 1
        x |= (c & 0x7F) << s
        if not c & 0x80: return x, o
        s += 7

def fields(b):
    o = 0
    while o < len(b):
        key, o = varint(b, o)
        f, w = key >> 3, key & 7
        if w == 0:
            v, o = varint(b, o)
        elif w == 1:
            v = b[o:o + 8]; o += 8
        elif w == 5:
            v = b[o:o + 4]; o += 4
        elif w == 2:
            n, o = varint(b, o); v = b[o:o + n]; o += n
        else:
            raise ValueError('wire type %d' % w)
        yield f, w, v

def event(b):
    e = {'step': 0, 'values': []}
    for f, w, v in fields(b):
        if f == 1 and w == 1: e['wall_time'] = struct.unpack('<d', v)[0]
        elif f == 2 and w == 0: e['step'] = v
        elif f == 3 and w == 2: e['file_version'] = v.decode()
        elif f == 5 and w == 2:
            for sf, sw, sv in fields(v):
                if sf != 1: continue
                val = {}
                for vf, vw, vv in fields(sv):
                    if vf == 1: val['tag'] = vv.decode()
                    elif vf == 2 and vw == 5: val['simple_value'] = struct.unpack('<f', vv)[0]
                    elif vf == 4 and vw == 2:
                        img = {}
                        for imf, imw, imv in fields(vv):
                            if imf == 1: img['height'] = imv
                            elif imf == 2: img['width'] = imv
                            elif imf == 3: img['colorspace'] = imv
                            elif imf == 4: img['png'] = imv[:8] == b'\x89PNG\r\n\x1a\n'; img['bytes'] = len(imv)
                        val['image'] = img
                e['values'].append(val)
    return e

out = []
for path in sys.argv[1:]:
    b = open(path, 'rb').read()
    o = 0
    while o < len(b):
        head = b[o:o + 8]
        (n,) = struct.unpack('<Q', head)
        (hc,) = struct.unpack('<I', b[o + 8:o + 12])
        assert hc == masked(head), 'length crc'
        data = b[o + 12:o + 12 + n]
        (dc,) = struct.unpack('<I', b[o + 12 + n:o + 16 + n])
        assert dc == masked(data), 'data crc'
        out.append(event(data))
        o += 16 + n
print(json.dumps(out))
`;

interface PyEvent {
  step: number;
  wall_time: number;
  file_version?: string;
  values: { tag: string; simple_value?: number; image?: { height: number; width: number; colorspace: number; png: boolean; bytes: number } }[];
}

const python = spawnSync('python3', ['--version']).status === 0;

function readWithPython(files: string[]): PyEvent[] {
  const r = spawnSync('python3', ['-c', READER, ...files], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as PyEvent[];
}

const tmp = mkdtempSync(join(tmpdir(), 'vmm-tb-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('TensorBoard event files', () => {
  it('CRC-32C and its mask match the published check values', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8);
  });

  it('records round-trip through the framing; a torn last record is not read', () => {
    const a = encodeEvent({ wallTime: 1.5, step: 7, values: [{ tag: 'x', scalar: 2 }] });
    const b = encodeEvent({ wallTime: 2.5, step: 300, values: [{ tag: 'y', scalar: -1 }] });
    const bytes = new Uint8Array([...tfRecord(a), ...tfRecord(b)]);
    expect(readTfRecords(bytes).map(eventStep)).toEqual([7, 300]);
    expect(readTfRecords(bytes.subarray(0, bytes.length - 3)).map(eventStep)).toEqual([7]);
  });

  it.skipIf(!python)('scalars and images read back by an independent reader (Python, CRCs checked)', () => {
    const w = new EventFileWriter(tmp, 1_700_000_000_000);
    w.scalars(1, { 'train/bound': -123.25, 'train/loss': 4.5 });
    w.scalars(2 ** 40, { big: 1 });
    const png = encodeImageGrid(new Float32Array(2 * 16).fill(0.5), { rows: 1, cols: 2, height: 4, width: 4 });
    w.image(3, 'samples', new Uint8Array(png), 12, 22);
    const events = readWithPython([w.path]);
    expect(events[0]!.file_version).toBe('brain.Event:2');
    expect(events.slice(1).map((e) => e.step)).toEqual([1, 2 ** 40, 3]);
    expect(events[1]!.values).toEqual([
      { tag: 'train/bound', simple_value: -123.25 },
      { tag: 'train/loss', simple_value: 4.5 },
    ]);
    expect(events[3]!.values[0]).toEqual({ tag: 'samples', image: { height: 12, width: 22, colorspace: 1, png: true, bytes: png.length } });
    expect(events[1]!.wall_time).toBeGreaterThan(1e9);
    rmSync(w.path);
  });

  it('truncation keeps the records up to a step, and the version record', () => {
    const dir = mkdtempSync(join(tmp, 'trunc-'));
    const w = new EventFileWriter(dir);
    for (let s = 1; s <= 5; s++) w.scalars(s, { v: s });
    writeFileSync(w.path, Buffer.concat([readFileSync(w.path), Buffer.from([1, 2, 3])])); // a torn write
    truncateEventFiles(dir, 3);
    const steps = readTfRecords(new Uint8Array(readFileSync(w.path))).map(eventStep);
    expect(steps).toEqual([0, 1, 2, 3]);
    // A run started again from nothing (step 0): the file goes.
    truncateEventFiles(dir, 0);
    expect(eventFiles(dir)).toEqual([]);
  });
});

describe.skipIf(!python)('a training run writes event files', () => {
  beforeAll(async () => {
    await selectBackend({ force: 'wasm', log: () => {} });
  });

  it('every logged step once, after a resume from a checkpoint older than the last records', async () => {
    const ir0 = irOfFile(join(MODELS, 'vma_mnist.vmm'));
    const config = { ...configOf(ir0, 6, 4), checkpointEvery: 3, validEvery: 3 };
    const ir = { ...ir0, train: config.train };
    const quiet = { progress: false, log: () => {} };
    const path = join(tmp, 'run');
    const dir = RunDir.create(path, config);
    await trainLoop(dir, config, ir, false, { ...quiet, maxStepsThisRun: 3 });
    // The run goes on to step 5 and is killed before its next checkpoint: put back the step-3 one.
    const at3 = join(tmp, 'checkpoint-at-3');
    cpSync(dir.checkpointPath, at3, { recursive: true });
    await trainLoop(dir, config, ir, true, { ...quiet, maxStepsThisRun: 2 });
    rmSync(dir.checkpointPath, { recursive: true });
    cpSync(at3, dir.checkpointPath, { recursive: true });
    await trainLoop(dir, config, ir, true, quiet);

    const metrics = dir.readMetrics();
    const trainSteps = metrics.filter((m) => m.kind === 'train').map((m) => m.step);
    expect(trainSteps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(metrics.filter((m) => m.kind === 'valid').map((m) => m.step)).toEqual([3, 6]);

    const files = eventFiles(path);
    expect(files.length).toBeGreaterThanOrEqual(1);
    const events = readWithPython(files);
    const scalar = (tag: string) =>
      events.flatMap((e) => e.values.filter((v) => v.tag === tag && v.simple_value !== undefined).map((v) => [e.step, v.simple_value!] as const));
    const bound = scalar('train/bound');
    expect(bound.map(([s]) => s)).toEqual([1, 2, 3, 4, 5, 6]);
    // The moving average goes on across the resume: step 4's is 0.95 of step 3's plus 0.05 of its bound.
    const ema = (s: number) => metrics.find((m) => m.kind === 'train' && m.step === s)!.boundEma as number;
    const b4 = metrics.find((m) => m.kind === 'train' && m.step === 4)!.bound as number;
    expect(ema(4)).toBeCloseTo(0.95 * ema(3) + 0.05 * b4, 6);
    // The values are those of metrics.jsonl (float32 in the event file).
    bound.forEach(([s, v]) => expect(v).toBeCloseTo(metrics.find((m) => m.kind === 'train' && m.step === s)!.bound as number, 3));
    expect(scalar('valid/bound').map(([s]) => s)).toEqual([3, 6]);
    for (const tag of ['train/loss', 'train/bound_ema', 'train/steps_per_sec', 'train/learning_rate']) expect(scalar(tag)).toHaveLength(6);
    expect(scalar('train/learning_rate')[0]![1]).toBeCloseTo(config.train.optimizer.lr, 6);
    // The address's KL against its ceiling log M, and a grid of generations, at each validation.
    const kl = scalar('valid/address_kl');
    expect(kl.map(([s]) => s)).toEqual([3, 6]);
    const ceiling = scalar('valid/address_kl_ceiling');
    kl.forEach(([, v], i) => expect(v).toBeLessThanOrEqual(ceiling[i]![1] + 1e-4));
    const images = events.flatMap((e) => e.values.filter((v) => v.image).map((v) => ({ step: e.step, ...v.image! })));
    expect(images.map((i) => i.step)).toEqual([3, 6]);
    expect(images[0]!.png).toBe(true);
    expect(images[0]!.width).toBeGreaterThan(images[0]!.height / 2);

    // The weights files say the run's step in their top-level metadata (safetensors __metadata__).
    for (const folder of ['checkpoint', 'final']) {
      const bytes = readFileSync(join(path, folder, 'checkpoint.safetensors'));
      const header = JSON.parse(bytes.toString('utf8', 8, 8 + Number(bytes.readBigUInt64LE(0)))) as { __metadata__: { step: string } };
      expect(header.__metadata__.step, folder).toBe('6');
    }

    // vmm plot: the same run's curves, SVG with a PNG beside it.
    const plots = plotRuns([path, path], { out: join(tmp, 'curves.svg') });
    expect(plots.map((f) => basename(f))).toEqual(['curves.svg', 'curves.png', 'curves_address_kl.svg', 'curves_address_kl.png']);
    expect(readFileSync(plots[1]!).subarray(1, 4).toString()).toBe('PNG');
    if (process.env['VMM_KEEP_PLOTS']) for (const f of plots) cpSync(f, join(process.env['VMM_KEEP_PLOTS'], basename(f)));
    const cli = await runCli('plot', path, '--out', join(tmp, 'cli.svg'));
    expect(cli.code, cli.err).toBe(0);
    expect(cli.out.split('\n').filter(Boolean).map((f) => basename(f))).toEqual(['cli.svg', 'cli.png', 'cli_address_kl.svg', 'cli_address_kl.png']);
    expect((await runCli('plot', tmp)).code).toBe(1); // not a run folder: one line, exit 1
    expect(plotRuns([path])).toEqual([join(path, 'training_curves.svg'), join(path, 'training_curves.png'), join(path, 'training_curves_address_kl.svg'), join(path, 'training_curves_address_kl.png')]);
  }, 60_000);
});
