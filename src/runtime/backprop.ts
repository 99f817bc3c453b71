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
interface BackendInternals {
  incRef?(dataId: object): void;
}
interface EngineInternals {
  state: {
    activeTape: TapeNode[] | null;
    gradientDepth: number;
    activeScope: { name: string } | null;
    tensorInfo: Map<object, { backend: BackendInternals }>;
  };
  backendName: string;
  addTapeNode(kernelName: string, inputs: unknown, outputs: tf.Tensor[], gradientsFunc: unknown, saved: tf.Tensor[], attrs: unknown): void;
  clone(x: tf.Tensor): tf.Tensor;
  makeTensorFromTensorInfo(info: { dataId: object; shape: number[]; dtype: tf.DataType }, backend: BackendInternals): tf.Tensor;
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

/** Backends whose `Identity` shares its input's buffer (cpu's own, wasm's since backend.ts patches it). */
const SHARING = new Set(['cpu', 'wasm']);
let sharedSaves = false;

/**
 * The engine saves every tensor an op's gradient needs through `engine.clone`, which runs the
 * `Identity` kernel and records a tape node for it (so that a higher-order gradient flows through
 * the saved copy). On cpu and wasm that kernel only adds a reference to the same buffer; here the
 * reference is added directly and the same tape node recorded, without dispatching a kernel: about
 * 130 of the 510 kernel calls of a training step of the benchmark model (bench/profile.ts) were
 * these saves. Other backends (tfjs-node) keep the original. `VMM_SHARED_SAVES=0` turns it off.
 */
export function installSharedSaves(): void {
  if (sharedSaves || process.env['VMM_SHARED_SAVES'] === '0') return;
  sharedSaves = true;
  const engine = tf.engine() as unknown as EngineInternals;
  const clone = engine.clone.bind(engine);
  engine.clone = (x: tf.Tensor): tf.Tensor => {
    const backend = engine.state.tensorInfo.get(x.dataId)?.backend;
    if (!SHARING.has(engine.backendName) || x.dtype === 'string' || x.dtype === 'complex64' || !backend?.incRef) return clone(x);
    backend.incRef(x.dataId);
    const y = engine.makeTensorFromTensorInfo({ dataId: x.dataId, shape: [...x.shape], dtype: x.dtype }, backend);
    // The tape node engine.clone records: identity, with the gradient cast to float32.
    const grad = (dy: tf.Tensor) => ({ x: () => tf.cast(dy, 'float32') });
    engine.addTapeNode(engine.state.activeScope?.name ?? '', { x }, [y], grad, [], {});
    return y;
  };
}
