/**
 * Frees what the backward pass is done with as it goes, the way PyTorch's autograd does.
 *
 * tfjs's backward pass (`engine.gradients` -> `backpropagateGradients`, tfjs-core 4.22) walks the
 * tape from the output back and keeps every intermediate gradient, and every tensor an op saved for
 * its gradient, alive until the whole backward pass ends. At M = 2048 (soft variant) that is the
 * gradient of every hidden layer of `g` and `h` over the whole memory at once, [65536, 400] floats
 * each (bench/memory.ts). But the gradient of an op's output is read by that op's gradient only,
 * and its saved tensors likewise: once its gradient functions have run, both can go.
 *
 * `installEagerRelease` wraps each tape node's gradient function (engine.addTapeNode): when the
 * next node's gradient starts, the previous node's output gradients and saved tensors are disposed,
 * except a tensor that one of its gradient functions returned as an input's gradient (a gradient
 * passed through unchanged is then stored for another tensor). Only in a first-order backward pass
 * (a higher-order one replays the tape); never the `dy` a caller passed in. Values are unchanged: only the moment of disposal moves.
 * `VMM_EAGER_RELEASE=0` turns it off (for before/after measurements).
 */
import * as tf from '@tensorflow/tfjs-core';

type GradFn = (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
interface TapeNode {
  saved?: tf.Tensor[];
  gradient?: GradFn;
}
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  addTapeNode(kernelName: string, inputs: unknown, outputs: tf.Tensor[], gradientsFunc: unknown, saved: tf.Tensor[], attrs: unknown): void;
}

/** The last node whose gradient ran: what it consumed, and what it handed on (not to be freed). */
let pending: { dys: tf.Tensor[]; saved: tf.Tensor[]; handedOn: Set<tf.Tensor> } | undefined;
let installed = false;

function releasePending(engine: EngineInternals): void {
  const p = pending;
  pending = undefined;
  if (!p || engine.state.gradientDepth !== 0) return;
  for (const t of [...p.dys, ...p.saved]) if (!p.handedOn.has(t)) t.dispose();
}

export function installEagerRelease(): void {
  if (installed || process.env['VMM_EAGER_RELEASE'] === '0') return;
  installed = true;
  const engine = tf.engine() as unknown as EngineInternals;
  const add = engine.addTapeNode.bind(engine);
  engine.addTapeNode = (kernelName, inputs, outputs, gradientsFunc, saved, attrs) => {
    add(kernelName, inputs, outputs, gradientsFunc, saved, attrs);
    const tape = engine.state.activeTape;
    const node = tape?.[tape.length - 1];
    const gradient = node?.gradient;
    if (!node || !gradient) return;
    node.gradient = (dys) => {
      releasePending(engine);
      const grads = gradient(dys);
      // A gradient made by the backward pass is newer than the output it belongs to; an older one
      // is the caller's own `dy` (tf.grad(f)(x, dy)), which stays the caller's.
      const made = dys.filter((d, i): d is tf.Tensor => d != null && outputs[i] !== undefined && d.id > outputs[i]!.id);
      const mine = { dys: made, saved: node.saved ?? [], handedOn: new Set<tf.Tensor>() };
      pending = mine;
      const wrapped: Record<string, () => tf.Tensor> = {};
      for (const [name, f] of Object.entries(grads)) {
        wrapped[name] = () => {
          const g = f();
          mine.handedOn.add(g);
          return g;
        };
      }
      return wrapped;
    };
  };
}
