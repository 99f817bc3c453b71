/**
 * `compile(source, options) -> Trainer`'s model half: an IR program with its trainable variables
 * (nets, params, the NVIL baseline net when the estimator wants one) and the function that
 * applies a net. Nets are created once per name, so a net called twice shares its weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import { InternalError } from '../diagnostics/diagnostic.ts';
import { InputError } from '../diagnostics/errors.ts';
import { Rng } from '../random/rng.ts';
import type { IrNet, IrProgram } from '../ir/types.ts';
import { foldFromEnv } from './fold.ts';
import { applyNet, applyNetOutputs, createNetParams, linearTail, type LinearTail, type NetOutputs } from './nets.ts';
import { createParam } from './params.ts';
import type { Inputs } from './trace.ts';

/** The learned input-dependent baseline b(x) of NVIL (Mnih & Gregor 2014): an MLP of the data to a scalar. */
export const BASELINE_NET = '__baseline';

export function baselineNet(ir: IrProgram): IrNet {
  const data = ir.data.find((d) => d.type.elem === 'binary' || d.type.elem === 'real');
  if (!data || data.type.shape.length !== 1) throw new InternalError('lower', 'NVIL baseline needs a vector data input');
  const d = data.type.shape[0]!.c;
  return {
    name: BASELINE_NET,
    layers: [
      { kind: 'linear', in: d, out: 100 },
      { kind: 'act', fn: 'tanh' },
      { kind: 'linear', in: 100, out: 1 },
    ],
    inShape: [d],
    outShape: [1],
    paramCount: d * 100 + 100 + 101,
  };
}

/** One input of a batch as plain numbers: data [B, ...], a memory [B, M, ...] (or [M, ...] shared). */
export interface RawInput {
  name: string;
  data: Float32Array;
  /** Full tensor shape including the batch axis (absent for a memory shared by the batch). */
  shape: number[];
  plates: 'batch'[];
}

/**
 * An input already on the device: a tensor the caller keeps between steps (a memory or a batch
 * used again), so a step neither uploads it nor holds a second copy of it beside a host array.
 * The step never disposes it.
 */
export interface DeviceInput extends Omit<RawInput, 'data'> {
  data: tf.Tensor;
}

/** What the lowering needs of a batch (the runtime's RawBatch adds episode bookkeeping). */
export interface InputBatch {
  inputs: (RawInput | DeviceInput)[];
}

/** An input's values as a tensor of its shape (a given tensor as it is, after checking its shape). */
function inputTensor(i: RawInput | DeviceInput): tf.Tensor {
  if (i.data instanceof Float32Array) return tf.tensor(i.data, i.shape);
  if (i.data.shape.length !== i.shape.length || i.data.shape.some((n, k) => n !== i.shape[k])) {
    throw new InputError(`input '${i.name}' is a tensor of shape [${i.data.shape}] where the batch says [${i.shape}]`);
  }
  if (i.data.dtype !== 'float32') throw new InputError(`input '${i.name}' is a ${i.data.dtype} tensor; inputs are float32`);
  return i.data;
}

export class CompiledModel {
  readonly nets: Map<string, IrNet>;
  readonly variables: Map<string, tf.Variable>;
  /** Whether the lowering folds nets' linear last layers through products (fold.ts). */
  readonly fold: boolean;

  constructor(
    readonly ir: IrProgram,
    seed: number,
    opts: {
      baseline?: boolean;
      /**
       * Fold nets' linear last layers through products where that saves work (fold.ts); default:
       * `VMM_FOLD` (on). `{ minSaving }`: on, with another threshold than `FOLD_MIN_SAVING`.
       */
      fold?: boolean | { minSaving: number };
    } = {},
  ) {
    const fold = opts.fold ?? foldFromEnv();
    this.fold = fold !== false;
    if (typeof fold === 'object') this.applyNet.foldMinSaving = fold.minSaving;
    this.nets = new Map(ir.nets.map((n) => [n.name, n]));
    if (opts.baseline) this.nets.set(BASELINE_NET, baselineNet(ir));
    this.variables = new Map();
    const rng = new Rng(seed);
    for (const net of this.nets.values()) {
      for (const [name, v] of Object.entries(createNetParams(net, rng))) this.variables.set(name, v);
    }
    for (const p of ir.params) this.variables.set(`param/${p.name}`, createParam(p, rng));
  }

  /**
   * Applies net `name` to [N, ...inShape]. Its `many` applies several nets to one input: nets
   * that all begin by calling the same net (Titans' key, value and gate nets `h >> linear(...)`
   * over a memory's entries) share that call's result, so the embedding of the entries is
   * computed once instead of once per net. Its `outputs` applies a net with `tap` / `skip`
   * stages: the final output and every tap from one pass, the skip inputs by name.
   */
  readonly applyNet = Object.assign(
    (name: string, flat: tf.Tensor): tf.Tensor => applyNet(this.net(name), this.variables, this.nets, flat),
    {
      outputs: (name: string, x: tf.Tensor, skips: Readonly<Record<string, tf.Tensor>>): NetOutputs =>
        applyNetOutputs(this.net(name), this.variables, this.nets, x, { skips }),
      hasTaps: (name: string): boolean => (this.net(name).taps?.length ?? 0) > 0,
      linearTail: (name: string): LinearTail | undefined => (this.fold ? linearTail(this.net(name), this.variables) : undefined),
      foldMinSaving: undefined as number | undefined,
      many: (names: readonly string[], flat: tf.Tensor): tf.Tensor[] => {
        const nets = names.map((name) => this.net(name));
        const first = nets[0]?.layers[0];
        const shared =
          nets.length > 1 && first?.kind === 'call' && nets.every((n) => n.layers.length > 1 && n.layers[0]?.kind === 'call' && n.layers[0].net === first.net)
            ? this.nets.get(first.net)
            : undefined;
        if (!shared) return nets.map((n) => applyNet(n, this.variables, this.nets, flat));
        return tf.tidy(() => {
          const e = applyNet(shared, this.variables, this.nets, flat);
          return nets.map((n) => applyNet(n, this.variables, this.nets, e, shared.outShape, { from: 1 }));
        });
      },
    },
  );

  private net(name: string): IrNet {
    const net = this.nets.get(name);
    if (!net) throw new InternalError('lower', `unknown net ${name}`);
    return net;
  }

  /** Throws InputError unless the batch has exactly the model's data and memory inputs (by name). */
  checkInputs(raw: InputBatch): void {
    const known = [...this.ir.data, ...this.ir.memories].map((i) => i.name);
    for (const i of raw.inputs) {
      if (!known.includes(i.name)) throw new InputError(`${this.ir.name} has no input '${i.name}'; its inputs are ${known.map((k) => `'${k}'`).join(', ')}`);
    }
    const given = new Set(raw.inputs.map((i) => i.name));
    const missing = known.filter((k) => !given.has(k));
    if (missing.length) throw new InputError(`the batch lacks the input(s) ${missing.map((k) => `'${k}'`).join(', ')} of ${this.ir.name}`);
  }

  /** The data, memories and params of a batch as plated values. Call inside tf.tidy. */
  inputs(raw: InputBatch): Inputs {
    this.checkInputs(raw);
    const out: Inputs = new Map();
    for (const i of raw.inputs) out.set(i.name, { t: inputTensor(i), plates: i.plates });
    for (const p of this.ir.params) out.set(p.name, { t: this.variables.get(`param/${p.name}`)!, plates: [] });
    // The no-memory control (src/ir/addressing.ts): the entries become copies of a learned one.
    for (const { memory, param } of this.ir.noMemory ?? []) {
      const m = out.get(memory);
      if (m) out.set(memory, { t: tf.add(tf.zerosLike(m.t), this.variables.get(`param/${param}`)!), plates: m.plates });
    }
    return out;
  }

  /** b(x) [B] for the NVIL baseline. */
  baseline(inputs: Inputs): tf.Tensor {
    const data = this.nets.get(BASELINE_NET)!;
    const x = [...inputs.values()].find((v) => v.plates.includes('batch') && v.t.rank === 2 && v.t.shape[1] === data.inShape[0]);
    if (!x) throw new InternalError('lower', 'no data input for the baseline');
    return tf.reshape(this.applyNet(BASELINE_NET, x.t), [-1]);
  }

  trainableVariables(): tf.Variable[] {
    return [...this.variables.values()];
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}
