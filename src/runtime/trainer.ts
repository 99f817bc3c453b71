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
import type { Estimator, EstimatorState } from '../estimators/types.ts';
import type { IrProgram } from '../ir/types.ts';
import { CompiledModel, type InputBatch } from '../lower/compile.ts';
import { estimateObjective } from '../lower/objective.ts';
import { estimatorProblem } from '../estimators/registry.ts';
import { makeOptimizer, type Optimizer } from './optimizer.ts';
import { RunError } from '../diagnostics/errors.ts';

export interface StepMetrics {
  step: number;
  /** Batch mean of the objective (the K-sample bound for the hard variants), nats. */
  bound: number;
  /** The loss the optimizer minimized (negated surrogate plus auxiliary losses); not a bound. */
  loss: number;
  ms: number;
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

  /** The program trained: the given one after its addressing transform (src/ir/addressing.ts). */
  readonly ir: IrProgram;

  constructor(
    program: IrProgram,
    readonly seed: number,
  ) {
    const problem = estimatorProblem(program);
    // Soft attention and the no-memory control are models of their own; a caller may hand over the
    // checked program with the setting only (idempotent when it is already transformed).
    const ir = withAddressing(program);
    this.ir = ir;
    if (problem) throw new RunError(problem);
    this.estimator = makeEstimator(ir.train.estimator);
    this.model = new CompiledModel(ir, seed, { baseline: this.estimator.needsBaselineNet });
    const { clip, ...opt } = ir.train.optimizer;
    this.optimizer = makeOptimizer({ ...opt, ...(clip !== undefined ? { clipNorm: clip } : {}) }, this.model.variables);
    this.rng = new Rng(seed ^ 0x5bd1e995);
    this.estState = this.estimator.initState();
  }

  /**
   * One training step on a batch: host arrays (a RawBatch, as the data sources make), or tensors
   * the caller keeps on the device between steps (DeviceInput), which the step leaves alone.
   */
  step(raw: InputBatch): StepMetrics {
    const t0 = performance.now();
    let boundT: tf.Tensor | undefined;
    let nextState = this.estState;
    const vars = this.model.variables;
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
      });
      nextState = r.state;
      boundT = tf.keep(tf.mean(r.bound));
      const loss = tf.neg(r.surrogate);
      return (r.extraLoss ? tf.add(loss, r.extraLoss) : loss) as tf.Scalar;
    }, [...vars.values()]);
    const loss = value.dataSync()[0]!;
    const bound = boundT!.dataSync()[0]!;
    // A non-finite step is not applied: the weights stay those that produced it, for the diagnosis.
    if (Number.isFinite(loss) && Number.isFinite(bound)) this.optimizer.apply(grads);
    value.dispose();
    boundT!.dispose();
    tf.dispose(grads);
    this.estState = nextState;
    this.stepCount++;
    return { step: this.stepCount, bound, loss, ms: performance.now() - t0 };
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
  }

  /** A fresh generator for evaluation, independent of the training stream. */
  evalRng(seed: number): Rng {
    return new Rng(seed);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}
