/**
 * A trainer: a compiled model, an estimator, an optimizer, and the random state of the run.
 * `step(batch)` runs forward, the estimator's surrogate, backward and one optimizer update, all
 * inside one tidy scope: no tensor outlives a step except the variables and optimizer moments.
 *
 * The trainer's whole state (variables, optimizer moments, estimator state, RNG, step) goes into a
 * checkpoint, so a resumed run continues exactly where the killed one stopped.
 */
import { withAddressing } from '../ir/addressing.ts';
import * as tf from '@tensorflow/tfjs-core';
import { makeEstimator } from '../estimators/registry.ts';
import { Rng, type RngState } from '../random/rng.ts';
import type { Estimator, EstimatorResult, EstimatorState } from '../estimators/types.ts';
import { asyncOnlyError, syncReads } from '../kernels/readback.ts';
import type { IrProgram } from '../ir/types.ts';
import { CompiledModel, type InputBatch } from '../lower/compile.ts';
import { estimateObjective } from '../lower/objective.ts';
import { estimatorProblem } from '../estimators/registry.ts';
import { makeOptimizer, type Optimizer } from './optimizer.ts';
import { nativeAllFinite, nativeFiniteAvailable } from './blas.ts';
import { RunError } from '../diagnostics/errors.ts';
import { splitAddressLogits, type AddressSplit } from '../lower/address_split.ts';
import { KEY_REFRESH_STEPS, bucketKeys, memoryKeys, type AddressCache, type KeyBuckets } from '../lower/cached_keys.ts';

export interface StepMetrics {
  step: number;
  /** Batch mean of the objective (the K-sample bound for the hard variants), nats. */
  bound: number;
  /** The loss the optimizer minimized (negated surrogate plus auxiliary losses); not a bound. */
  loss: number;
  ms: number;
  /**
   * The variables whose gradient had an entry that was not finite though the loss was (a log or
   * a division whose argument reached 0 exactly, e.g. a log of a softmax entry that underflowed):
   * the update was not applied. Absent on a step whose gradient was finite.
   */
  skipped?: string[];
}

/** A step between its backward pass and its update: what `finish` needs. */
interface Pending {
  t0: number;
  value: tf.Scalar;
  bound: tf.Tensor;
  grads: tf.NamedTensorMap;
  /**
   * The sum of every gradient's entries: finite unless an entry is not (or the sum overflows).
   * Absent where the native module tests the gradients in place instead (wasm).
   */
  gradSum?: tf.Scalar;
  nextState: EstimatorState;
  settle?: NonNullable<EstimatorResult['settle']>;
}

/** The names (sorted) of the gradients with an entry that is NaN or infinite, by a full scan of each. */
function nonFiniteNames<T>(grads: Record<string, T>, read: (g: T) => Float32Array, names: ReadonlyMap<string, string>): string[] {
  const bad: string[] = [];
  for (const [id, g] of Object.entries(grads)) {
    const data = read(g);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) {
        bad.push(names.get(id) ?? id);
        break;
      }
    }
  }
  return bad.sort();
}

export interface TrainerState {
  step: number;
  rng: RngState | number;
  estimator: EstimatorState;
}

export class Trainer {
  readonly model: CompiledModel;
  readonly estimator: Estimator;
  readonly optimizer: Optimizer;
  private rng: Rng;
  private estState: EstimatorState;
  stepCount = 0;

  /** The model's name of each variable by its tfjs name (the key of its gradient). */
  private get varNames(): Map<string, string> {
    return new Map([...this.model.variables].map(([name, v]) => [v.name, name]));
  }

  /** The program trained: the given one after its addressing transform (src/ir/addressing.ts). */
  readonly ir: IrProgram;

  /**
   * `address = topk(k, tail)` with the guide's logits as `keys(mem) @ query(x)`: the split, and the
   * shared memory's keys kept between steps (src/lower/cached_keys.ts), recomputed every
   * `keyRefresh` steps, when the memory given changes (another array or tensor) and after setState.
   * The keys are not part of a checkpoint: a run resumed between two refreshes recomputes them from
   * the resumed weights, so it goes on with a fresher proposal, not the very draws of the run that
   * was not interrupted (the bound is valid either way: src/lower/truncated.ts `proposalFromScores`).
   */
  private readonly keyPlan: AddressSplit | undefined;
  private keyCache: { keys: tf.Tensor; buckets?: KeyBuckets; source: object; step: number } | undefined;
  readonly keyRefresh: number;

  constructor(
    program: IrProgram,
    readonly seed: number,
    opts: {
      keyRefresh?: number;
      cachedKeys?: boolean;
      /** Fold nets' linear last layers through products where that saves work (src/lower/fold.ts); default `VMM_FOLD` (on). */
      fold?: boolean | { minSaving: number };
    } = {},
  ) {
    const problem = estimatorProblem(program);
    // Soft attention and the no-memory control are models of their own; a caller may hand over the
    // checked program with the setting only (idempotent when it is already transformed).
    const ir = withAddressing(program);
    this.ir = ir;
    if (problem) throw new RunError(problem);
    this.estimator = makeEstimator(ir.train.estimator);
    this.model = new CompiledModel(ir, seed, { baseline: this.estimator.needsBaselineNet, ...(opts.fold !== undefined ? { fold: opts.fold } : {}) });
    const { clip, ...opt } = ir.train.optimizer;
    this.optimizer = makeOptimizer({ ...opt, ...(clip !== undefined ? { clipNorm: clip } : {}) }, this.model.variables);
    this.rng = new Rng(seed ^ 0x5bd1e995);
    this.estState = this.estimator.initState();
    this.keyRefresh = opts.keyRefresh ?? ir.train.address?.refresh ?? KEY_REFRESH_STEPS;
    if (!Number.isInteger(this.keyRefresh) || this.keyRefresh < 1) throw new RunError(`keyRefresh must be a whole number of steps >= 1, got ${this.keyRefresh}`);
    const split = ir.train.address && !ir.softAttention?.length && opts.cachedKeys !== false ? splitAddressLogits(ir) : undefined;
    this.keyPlan = typeof split === 'object' && split.learned === 0 && split.offset === 0 ? split : undefined;
  }

  /** The step at which the cached keys were last computed; undefined while the cached path has not run. */
  keysComputedAt(): number | undefined {
    return this.keyCache?.step;
  }

  /**
   * `raw` with every host input that has no batch plate (one memory shared by the batch, e.g.
   * `vmm train --memory`: the same array every step) replaced by a tensor kept between steps, so
   * a 10^5-entry memory is not copied to the device in every step. A new array replaces it.
   */
  private onDevice(raw: InputBatch): InputBatch {
    if (!raw.inputs.some((i) => i.plates.length === 0 && i.data instanceof Float32Array)) return raw;
    return {
      ...raw,
      inputs: raw.inputs.map((i) => {
        if (i.plates.length || !(i.data instanceof Float32Array)) return i;
        let kept = this.sharedInputs.get(i.name);
        if (!kept || kept.source !== i.data) {
          kept?.t.dispose();
          kept = { source: i.data, t: tf.keep(tf.tensor(i.data, i.shape)) };
          this.sharedInputs.set(i.name, kept);
        }
        return { name: i.name, data: kept.t, shape: i.shape, plates: i.plates };
      }),
    };
  }
  private readonly sharedInputs = new Map<string, { source: Float32Array; t: tf.Tensor }>();

  /** The cached keys for this batch's shared memory (refreshed when due); undefined where the cached path does not apply. */
  private addressCache(raw: InputBatch): AddressCache | undefined {
    const plan = this.keyPlan;
    const mem = plan && raw.inputs.find((i) => i.name === plan.memory);
    if (!plan || !mem || mem.plates.length) return undefined;
    const c = this.keyCache;
    if (!c || c.source !== mem.data || this.stepCount - c.step >= this.keyRefresh) {
      const keys = tf.tidy(() => memoryKeys(plan, this.model.inputs(raw), this.model.applyNet));
      // Buckets of the keys for `probe: P` (their layout is read on the host: sync backends only; webgpu scans every key).
      const a = this.ir.train.address;
      const buckets = a?.probe !== undefined && syncReads() ? bucketKeys(keys, a.probe, a.k) : undefined;
      this.disposeKeys();
      this.keyCache = { keys, ...(buckets ? { buckets } : {}), source: mem.data, step: this.stepCount };
    }
    const kc = this.keyCache!;
    return { split: plan, keys: kc.keys, ...(kc.buckets ? { buckets: kc.buckets } : {}) };
  }

  private disposeKeys(): void {
    const c = this.keyCache;
    if (c) tf.dispose([c.keys, ...(c.buckets ? [c.buckets.means, c.buckets.entries, c.buckets.keys] : [])]);
    this.keyCache = undefined;
  }

  /**
   * One training step on a batch: host arrays (a RawBatch, as the data sources make), or tensors
   * the caller keeps on the device between steps (DeviceInput), which the step leaves alone. Reads
   * its metrics synchronously: cpu, wasm and native TensorFlow; on webgpu use `stepAsync`.
   */
  step(raw: InputBatch): StepMetrics {
    if (!syncReads()) throw asyncOnlyError('Trainer.step');
    const p = this.forward(raw);
    const loss = p.value.dataSync()[0]!;
    const bound = p.bound.dataSync()[0]!;
    const settled = p.settle ? p.settle.value.dataSync()[0]! : undefined;
    const finite = p.gradSum ? Number.isFinite(p.gradSum.dataSync()[0]!) : nativeAllFinite(Object.values(p.grads));
    const skipped = finite ? [] : nonFiniteNames(p.grads, (g) => g.dataSync() as Float32Array, this.varNames);
    return this.finish(p, loss, bound, settled, skipped);
  }

  /**
   * The same step, reading its metrics (and any estimator state computed on the device) back
   * asynchronously: the form every backend runs, and the only one on webgpu. The step reads back
   * only these scalars.
   */
  async stepAsync(raw: InputBatch): Promise<StepMetrics> {
    const p = this.forward(raw);
    const [lossV, boundV, settleV, sumV] = await Promise.all([p.value.data(), p.bound.data(), p.settle?.value.data(), p.gradSum?.data()]);
    const skipped: string[] = [];
    if (sumV ? !Number.isFinite(sumV[0]!) : !nativeAllFinite(Object.values(p.grads))) {
      const scans = await Promise.all(Object.entries(p.grads).map(async ([name, g]) => [name, (await g.data()) as Float32Array] as const));
      skipped.push(...nonFiniteNames(Object.fromEntries(scans), (data) => data, this.varNames));
    }
    return this.finish(p, lossV[0]!, boundV[0]!, settleV?.[0], skipped);
  }

  /** Forward, surrogate and backward, in one tidy scope; leaves the update for `finish`. */
  private forward(host: InputBatch): Pending {
    const t0 = performance.now();
    const raw = this.onDevice(host);
    let boundT: tf.Tensor | undefined;
    let nextState = this.estState;
    let settle: EstimatorResult['settle'];
    const vars = this.model.variables;
    const addressCache = this.addressCache(raw);
    const { value, grads } = tf.variableGrads(() => {
      const inputs = this.model.inputs(raw);
      const baseline = this.estimator.needsBaselineNet ? this.model.baseline(inputs) : undefined;
      const r = estimateObjective({
        ir: this.ir,
        inputs,
        applyNet: this.model.applyNet,
        estimator: this.estimator,
        state: this.estState,
        rng: this.rng,
        ...(baseline ? { baseline } : {}),
        ...(addressCache ? { addressCache } : {}),
      });
      nextState = r.state;
      settle = r.settle;
      boundT = tf.keep(tf.mean(r.bound));
      const loss = tf.neg(r.surrogate);
      return (r.extraLoss ? tf.add(loss, r.extraLoss) : loss) as tf.Scalar;
    }, [...vars.values()]);
    // One scalar says whether every gradient entry is finite (a sum per variable: a few kernels,
    // read back with the metrics); the names are found only when it is not.
    // On wasm with the native module, one vectorized pass over each gradient where it lies instead.
    const gradSum = nativeFiniteAvailable()
      ? undefined
      : tf.tidy(() => {
          const sums = Object.values(grads).map((g) => tf.sum(g));
          return (sums.length ? tf.addN(sums) : tf.scalar(0)) as tf.Scalar;
        });
    return { t0, value, bound: boundT!, grads, ...(gradSum ? { gradSum } : {}), nextState, ...(settle ? { settle } : {}) };
  }

  /**
   * Applies the update (unless the step or its gradient was not finite) and frees the step's
   * tensors. `skipped`: the variables whose gradient has an entry that is not finite.
   */
  private finish(p: Pending, loss: number, bound: number, settled: number | undefined, skipped: string[]): StepMetrics {
    // A non-finite step is not applied: the weights stay those that produced it, for the diagnosis.
    // Nor is a non-finite gradient of a finite loss: applied, it would turn the weights (and
    // Adam's moments, for good) into NaN, and the run would fail a step later at a site that did
    // nothing wrong (issue #27: a VSM run lost at step 2,989 this way).
    const finite = Number.isFinite(loss) && Number.isFinite(bound);
    if (finite && skipped.length === 0) this.optimizer.apply(p.grads);
    p.value.dispose();
    p.bound.dispose();
    p.gradSum?.dispose();
    p.settle?.value.dispose();
    tf.dispose(p.grads);
    this.estState = p.settle && settled !== undefined ? p.settle.state(settled) : p.nextState;
    this.stepCount++;
    return { step: this.stepCount, bound, loss, ms: performance.now() - p.t0, ...(finite && skipped.length ? { skipped } : {}) };
  }

  state(): TrainerState {
    return { step: this.stepCount, rng: this.rng.state(), estimator: this.estState };
  }

  setState(s: TrainerState): void {
    this.stepCount = s.step;
    // Checkpoints before the generators were unified saved a mulberry32 uint32: reseed from it
    // (the run continues with an equally good stream, not the very same numbers).
    this.rng = typeof s.rng === 'number' ? new Rng(s.rng, 'resumed') : Rng.fromState(s.rng);
    this.estState = s.estimator;
    this.disposeKeys();
  }

  /** A fresh generator for evaluation, independent of the training stream. */
  evalRng(seed: number): Rng {
    return new Rng(seed);
  }

  dispose(): void {
    this.disposeKeys();
    for (const { t } of this.sharedInputs.values()) t.dispose();
    this.sharedInputs.clear();
    this.optimizer.dispose();
    this.model.dispose();
  }
}
