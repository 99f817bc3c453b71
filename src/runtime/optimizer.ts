/**
 * Optimizers over a named map of variables, with state that can be exported and imported exactly,
 * so a resumed run takes bitwise the same next step as an uninterrupted one.
 *
 * - Adam: Kingma & Ba 2014, arXiv:1412.6980, Algorithm 1 (bias-corrected moments, eps added to
 *   sqrt(v_hat)); the same update as PyTorch's `torch.optim.Adam`, so reference runs compare.
 * - SGD, with optional heavy-ball momentum in PyTorch's form (`buf = mu buf + g; theta -= lr buf`).
 * - Optional clipping of all gradients together by their global L2 norm
 *   (Pascanu et al. 2013, arXiv:1211.5063): `g *= clip / max(||g||, clip)`.
 *
 * Written directly rather than wrapping `tf.train.adam`: the state is a handful of variables whose
 * values we read and write ourselves, and the update is the paper's, not tfjs's epsilon-hat form.
 * Moments are float32 variables; the step counter and bias corrections live in JS numbers.
 * An Adam update of a step is one kernel call for every variable on wasm (where the native module is
 * built) and cpu, instead of 13 tfjs ops per variable (adam.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamAll, fusedAdamAvailable } from './adam.ts';
import type { AdamStep } from './blas.ts';

export interface OptimizerConfig {
  kind: 'adam' | 'sgd';
  lr: number;
  /** Adam: decay of the first moment (default 0.9). */
  beta1?: number;
  /** Adam: decay of the second moment (default 0.999). */
  beta2?: number;
  /** Adam: added to sqrt(v_hat) (default 1e-8). */
  eps?: number;
  /** SGD: heavy-ball momentum (default 0, none). */
  momentum?: number;
  /** Clip all gradients together to this global L2 norm (default: no clipping). */
  clipNorm?: number;
}

export type ResolvedOptimizerConfig = Required<Omit<OptimizerConfig, 'clipNorm'>> & { clipNorm: number | null };

/** A float32 tensor as plain data. */
export interface TensorData {
  shape: number[];
  data: Float32Array;
}

/** Everything needed to continue: config, step, and every slot (moment) of every variable. */
export interface OptimizerState {
  config: ResolvedOptimizerConfig;
  step: number;
  /** slot name ('m', 'v' for Adam; 'velocity' for SGD with momentum) -> variable name -> value. */
  slots: Record<string, Record<string, TensorData>>;
}

export type VariableMap = ReadonlyMap<string, tf.Variable> | Readonly<Record<string, tf.Variable>>;
export type GradMap = ReadonlyMap<string, tf.Tensor> | Readonly<Record<string, tf.Tensor>>;

export interface Optimizer {
  readonly config: ResolvedOptimizerConfig;
  /** Updates applied so far. */
  readonly step: number;
  /** The variable names it updates, in update order. */
  readonly names: readonly string[];
  /**
   * One update. `grads` is keyed by our variable names or by the tfjs variable names (what
   * `tf.variableGrads` returns). A variable without a gradient is left alone, moments included.
   * Does not dispose `grads`.
   */
  apply(grads: GradMap): void;
  setLearningRate(lr: number): void;
  /** The state as plain data (reads the moments from the device, asynchronously: any backend). */
  exportState(): Promise<OptimizerState>;
  /**
   * Restores the step and moments exported by an optimizer of the same kind over the same
   * variables (its learning rate etc. stay this optimizer's).
   */
  importState(s: OptimizerState): void;
  dispose(): void;
}

export function resolveConfig(c: OptimizerConfig): ResolvedOptimizerConfig {
  const r: ResolvedOptimizerConfig = {
    kind: c.kind,
    lr: c.lr,
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    eps: c.eps ?? 1e-8,
    momentum: c.momentum ?? 0,
    clipNorm: c.clipNorm ?? null,
  };
  const bad = (what: string) => {
    throw new Error(`optimizer: ${what}`);
  };
  if (r.kind !== 'adam' && r.kind !== 'sgd') bad(`unknown kind '${String(r.kind)}' (expected adam or sgd)`);
  if (!(r.lr > 0) || !Number.isFinite(r.lr)) bad(`learning rate must be a positive number, got ${r.lr}`);
  if (!(r.beta1 >= 0 && r.beta1 < 1)) bad(`beta1 must be in [0, 1), got ${r.beta1}`);
  if (!(r.beta2 >= 0 && r.beta2 < 1)) bad(`beta2 must be in [0, 1), got ${r.beta2}`);
  if (!(r.eps >= 0)) bad(`eps must be >= 0, got ${r.eps}`);
  if (!(r.momentum >= 0 && r.momentum < 1)) bad(`momentum must be in [0, 1), got ${r.momentum}`);
  if (r.clipNorm !== null && !(r.clipNorm > 0)) bad(`clipNorm must be positive, got ${r.clipNorm}`);
  return r;
}

/** The optimizer the IR's `train { optimizer: ... }` asks for, over `variables`. */
export function makeOptimizer(config: OptimizerConfig, variables: VariableMap, options: { fused?: boolean } = {}): Optimizer {
  return new SlotOptimizer(resolveConfig(config), variables, options.fused ?? true);
}

/** sqrt(sum of squares of all tensors): the global norm of a gradient. */
export function globalNorm(tensors: readonly tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => {
    if (tensors.length === 0) return tf.scalar(0);
    return tf.sqrt(tf.addN(tensors.map((t) => tf.sum(tf.square(t))))) as tf.Scalar;
  });
}

function entries<T>(m: ReadonlyMap<string, T> | Readonly<Record<string, T>>): [string, T][] {
  return m instanceof Map ? [...(m as ReadonlyMap<string, T>).entries()] : Object.entries(m as Readonly<Record<string, T>>);
}

class SlotOptimizer implements Optimizer {
  private readonly vars: Map<string, tf.Variable>;
  private readonly slots = new Map<string, Map<string, tf.Variable>>();
  private t = 0;
  config: ResolvedOptimizerConfig;
  readonly names: readonly string[];

  /** `fused`: the one-pass native Adam where available (off only to compare in tests). */
  constructor(
    config: ResolvedOptimizerConfig,
    variables: VariableMap,
    private readonly fused: boolean,
  ) {
    this.config = config;
    // Sorted names: the update (and the global norm's summation order) does not depend on the
    // order in which variables were created.
    this.vars = new Map(entries(variables).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    this.names = [...this.vars.keys()];
    for (const slot of this.slotNames()) {
      const m = new Map<string, tf.Variable>();
      for (const [name, v] of this.vars) m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
      this.slots.set(slot, m);
    }
  }

  get step(): number {
    return this.t;
  }

  private slotNames(): string[] {
    if (this.config.kind === 'adam') return ['m', 'v'];
    return this.config.momentum > 0 ? ['velocity'] : [];
  }

  setLearningRate(lr: number): void {
    this.config = resolveConfig({ ...this.config, clipNorm: this.config.clipNorm ?? undefined, lr });
  }

  apply(grads: GradMap): void {
    const byName = new Map(entries(grads));
    const present: [string, tf.Variable, tf.Tensor][] = [];
    for (const [name, v] of this.vars) {
      const g = byName.get(v.name) ?? byName.get(name);
      if (!g) continue;
      if (!sameShape(g.shape, v.shape)) throw new Error(`optimizer: gradient of ${name} has shape [${g.shape}], variable [${v.shape}]`);
      present.push([name, v, g]);
    }
    if (present.length === 0) return;
    const c = this.config;
    const t = this.t + 1;
    tf.tidy(() => {
      let scale: tf.Scalar | undefined;
      if (c.clipNorm !== null) {
        const norm = globalNorm(present.map(([, , g]) => g));
        scale = tf.div(c.clipNorm, tf.maximum(norm, c.clipNorm)) as tf.Scalar;
      }
      if (c.kind === 'adam') {
        const step: AdamStep = {
          beta1: c.beta1,
          beta2: c.beta2,
          stepSize: c.lr / (1 - Math.pow(c.beta1, t)),
          sqrtBc2: Math.sqrt(1 - Math.pow(c.beta2, t)),
          eps: c.eps,
        };
        const gs = present.map(([, , g0]) => (scale ? tf.mul(g0, scale) : g0));
        const ms = present.map(([name]) => this.slots.get('m')!.get(name)!);
        const vs = present.map(([name]) => this.slots.get('v')!.get(name)!);
        if (this.fused && fusedAdamAvailable()) {
          // One kernel call for every variable (the same one-pass update per variable, adam.ts).
          const outs = fusedAdamAll(present.map(([, w]) => w), gs, ms, vs, step);
          for (const [i, [w1, m1, v1]] of outs.entries()) {
            present[i]![1].assign(w1);
            ms[i]!.assign(m1);
            vs[i]!.assign(v1);
          }
          return;
        }
        const update = adamOps(step);
        for (const [i, [, w]] of present.entries()) {
          const [w1, m1, v1] = update(w, gs[i]!, ms[i]!, vs[i]!);
          w.assign(w1);
          ms[i]!.assign(m1);
          vs[i]!.assign(v1);
        }
      } else {
        const lr = tf.scalar(c.lr);
        const mu = tf.scalar(c.momentum);
        for (const [name, v, g0] of present) {
          const g = scale ? tf.mul(g0, scale) : g0;
          if (c.momentum > 0) {
            const buf = this.slots.get('velocity')!.get(name)!;
            // PyTorch: the first step initializes the buffer to g.
            const b = t === 1 ? g : tf.add(tf.mul(mu, buf), g);
            buf.assign(b);
            v.assign(tf.sub(v, tf.mul(lr, b)));
          } else {
            v.assign(tf.sub(v, tf.mul(lr, g)));
          }
        }
      }
    });
    this.t = t;
  }

  async exportState(): Promise<OptimizerState> {
    const slots: Record<string, Record<string, TensorData>> = {};
    const step = this.t;
    for (const [slot, m] of this.slots) {
      const out: Record<string, TensorData> = {};
      for (const [name, v] of m) out[name] = { shape: [...v.shape], data: Float32Array.from((await v.data()) as Float32Array) };
      slots[slot] = out;
    }
    return { config: { ...this.config }, step, slots };
  }

  importState(s: OptimizerState): void {
    if (s.config.kind !== this.config.kind) throw new Error(`optimizer: state is for ${s.config.kind}, this optimizer is ${this.config.kind}`);
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`optimizer: bad step ${s.step} in state`);
    const want = this.slotNames();
    const have = Object.keys(s.slots);
    if (want.length !== have.length || want.some((w) => !have.includes(w))) {
      throw new Error(`optimizer: state has slots [${have}], expected [${want}]`);
    }
    // Validate everything before assigning anything.
    for (const slot of want) {
      const data = s.slots[slot]!;
      for (const [name, v] of this.vars) {
        const d = data[name];
        if (!d) throw new Error(`optimizer: state lacks ${slot} of ${name}`);
        if (!sameShape(d.shape, v.shape) || d.data.length !== v.size) {
          throw new Error(`optimizer: ${slot} of ${name} has shape [${d.shape}] in the state, variable [${v.shape}]`);
        }
      }
    }
    for (const slot of want) {
      const data = s.slots[slot]!;
      for (const [name, v] of this.slots.get(slot)!) {
        const d = data[name]!;
        tf.tidy(() => v.assign(tf.tensor(d.data, d.shape, 'float32')));
      }
    }
    // The configuration stays this optimizer's own: a run resumed with a new --lr uses it.
    this.t = s.step;
  }

  dispose(): void {
    for (const m of this.slots.values()) for (const v of m.values()) v.dispose();
    this.slots.clear();
  }
}

/** The Adam update of `SlotOptimizer.apply` as tfjs ops (13 kernels per variable): `[w', m', v']`. */
function adamOps(step: AdamStep): (w: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor) => [tf.Tensor, tf.Tensor, tf.Tensor] {
  const b1 = tf.scalar(step.beta1);
  const b2 = tf.scalar(step.beta2);
  const ob1 = tf.scalar(1 - step.beta1);
  const ob2 = tf.scalar(1 - step.beta2);
  const stepSize = tf.scalar(step.stepSize);
  const sqrtBc2 = tf.scalar(step.sqrtBc2);
  const eps = tf.scalar(step.eps);
  return (w, g, m, v) => {
    const m1 = tf.add(tf.mul(b1, m), tf.mul(ob1, g));
    const v1 = tf.add(tf.mul(b2, v), tf.mul(ob2, tf.square(g)));
    const denom = tf.add(tf.div(tf.sqrt(v1), sqrtBc2), eps);
    return [tf.sub(w, tf.mul(stepSize, tf.div(m1, denom))), m1, v1];
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
