/**
 * Will the model fit? A rough estimate of the memory a training step needs, made from the IR
 * before any tensor is allocated, so that a model with 10^12 weights or a batch of a million is
 * refused with its figures instead of dying in the middle of training with `RangeError: Invalid
 * typed array length` or a wasm `memory access out of bounds`.
 *
 * - parameters: every net's weights and biases and every `param`, float32; training adds a
 *   gradient per weight and Adam two slots (first and second moments, Kingma & Ba 2015,
 *   arXiv:1412.6980);
 * - activations: every net application of the model and the guide keeps its layer outputs for the
 *   backward pass, per example and per sample (batch x k), times the leading axes of its argument
 *   (a net mapped over the M entries of a memory runs M times); plus the inputs.
 *
 * It is an estimate, not a measurement: it refuses only what cannot fit (a tensor longer than a
 * typed array can be, or a total above the memory the caller says there is).
 */
import { distParams, type IrExpr, type IrLayer, type IrNet, type IrProgram, type IrStmt, type Size, type TrainSettings } from '../ir/types.ts';

/** The longest tensor a backend can allocate: JavaScript typed arrays stop at 2^31 elements here. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;
/** Memory of the wasm backend: a 32-bit heap of at most 4 GiB. */
export const WASM_MAX_BYTES = 4 * 2 ** 30;
/** What `check` assumes when it does not know the machine: no run needs more than this. */
export const DEFAULT_MAX_BYTES = 64 * 2 ** 30;

const FLOAT_BYTES = 4;

export interface BudgetSizes {
  batch: number;
  /** Samples per example (the estimator's k). */
  k: number;
  /** Entries bound to every size symbol (the memory size): classes x shots + distractors by default. */
  memorySize: number;
  /** Whether the optimizer keeps two slots per weight (Adam) or none (SGD). */
  adam: boolean;
}

export interface BudgetFigures {
  parameters: number;
  /** Weights, gradients and optimizer slots. */
  parameterBytes: number;
  activationBytes: number;
  totalBytes: number;
  /** The longest single tensor and who owns it: weights of a net or param, or a net's output over a batch. */
  largest: { elements: number; owner: string; activation: boolean };
}

/** A problem with the figures: what the user reads, and the net or param to point at, if one is to blame. */
export interface BudgetProblem {
  message: string;
  culprit?: { kind: 'net' | 'param'; name: string };
  figures: BudgetFigures;
}

/** The sizes a training run uses, from its settings. */
export function sizesOf(train: TrainSettings): BudgetSizes {
  const e = train.episodes;
  return {
    batch: train.batch,
    k: Math.max(1, train.estimator.k),
    memorySize: e.classes * e.shots + e.distractors,
    adam: train.optimizer.kind === 'adam',
  };
}

function sizeValue(s: Size, m: number): number {
  let v = s.c;
  for (const t of Object.values(s.terms)) v += t * m;
  return Math.max(0, v);
}

const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** Layer outputs of one application of a net, per example (float count), following `call`s. */
function netActivations(net: IrNet, nets: Map<string, IrNet>, seen: Set<string> = new Set()): number {
  if (seen.has(net.name)) return 0;
  seen.add(net.name);
  let shape = [...net.inShape];
  let total = 0;
  const out = (l: IrLayer): number[] => {
    switch (l.kind) {
      case 'linear':
        return [...shape.slice(0, -1), l.out];
      case 'slice':
        return [...shape.slice(0, -1), l.to - l.from];
      case 'act':
        return shape;
      case 'reshape':
        return l.shape;
      case 'flatten':
        return [product(shape)];
      case 'conv2d':
      case 'deconv2d': {
        const [h = 1, w = 1] = shape;
        const grow = l.kind === 'deconv2d';
        const side = (n: number) =>
          grow ? (l.padding === 'same' ? n * l.stride : (n - 1) * l.stride + l.kernel) : l.padding === 'same' ? Math.ceil(n / l.stride) : Math.floor((n - l.kernel) / l.stride) + 1;
        return [side(h), side(w), l.outChannels];
      }
      case 'call': {
        const inner = nets.get(l.net);
        if (!inner) return shape;
        total += netActivations(inner, nets, seen);
        return inner.outShape;
      }
      case 'tap':
        return shape;
      case 'skip':
        // An estimate, like the rest: the skip's channels (or features) join the last axis.
        return [...shape.slice(0, -1), (shape[shape.length - 1] ?? 0) + l.channels];
    }
  };
  for (const l of net.layers) {
    shape = out(l);
    total += product(shape);
  }
  seen.delete(net.name);
  return total;
}

/** Every net application in an expression, with the number of times it runs per example. */
function netApplications(e: IrExpr, m: number, into: { net: string; times: number }[]): void {
  switch (e.op) {
    case 'net': {
      // The argument's elements: the net's input times the axes it is mapped over.
      // A tap read (`g(x).s14`) shares the forward pass of `g(x)`.
      if (!e.tap) into.push({ net: e.net, times: product(e.arg.type.shape.map((s) => sizeValue(s, m))) });
      netApplications(e.arg, m, into);
      for (const s of e.skips ?? []) netApplications(s.arg, m, into);
      return;
    }
    case 'index':
      netApplications(e.target, m, into);
      netApplications(e.index, m, into);
      return;
    case 'builtin':
      // The nets under `attend` were never counted (its IR node had no case here): counting them
      // changes the advice for the soft-attention models (test/check/budget_dominant.test.ts), a
      // change of the estimate of its own, not of the signature table's.
      if (e.fn === 'attend') return;
      for (const a of e.args) netApplications(a, m, into);
      return;
    case 'matmul':
    case 'binary':
      netApplications(e.left, m, into);
      netApplications(e.right, m, into);
      return;
    case 'unary':
    case 'slice':
      netApplications(e.arg, m, into);
      return;
    case 'const':
    case 'ref':
      return;
  }
}

function stmtExprs(s: IrStmt): IrExpr[] {
  if (s.stmt === 'let') return [s.value];
  return distParams(s.dist);
}

/** The figures of a model at the given sizes. */
export function estimateBudget(ir: IrProgram, sizes: BudgetSizes): BudgetFigures {
  const m = sizes.memorySize;
  let parameters = 0;
  let largest = { elements: 0, owner: '', activation: false };
  // Weights too long to allocate are the first thing to fix: they win over any activation.
  const consider = (elements: number, owner: string, activation = false) => {
    const weightsFirst = largest.elements > MAX_TENSOR_ELEMENTS && !largest.activation;
    if (elements > largest.elements && !(activation && weightsFirst)) largest = { elements, owner, activation };
  };
  for (const n of ir.nets) {
    parameters += n.paramCount;
    for (const l of n.layers) {
      if (l.kind === 'linear') consider(l.in * l.out, `net \`${n.name}\``);
      if (l.kind === 'conv2d' || l.kind === 'deconv2d') consider(l.kernel * l.kernel * l.inChannels * l.outChannels, `net \`${n.name}\``);
    }
  }
  for (const p of ir.params) {
    const count = product(p.type.shape.map((s) => sizeValue(s, m)));
    parameters += count;
    consider(count, `param \`${p.name}\``);
  }
  const parameterBytes = parameters * FLOAT_BYTES * (2 + (sizes.adam ? 2 : 0));

  const nets = new Map(ir.nets.map((n) => [n.name, n]));
  const apps: { net: string; times: number }[] = [];
  for (const s of [...ir.model, ...ir.guide.stmts]) for (const e of stmtExprs(s)) netApplications(e, m, apps);
  const perSample = sizes.batch * sizes.k;
  let activations = 0;
  for (const a of apps) {
    const net = nets.get(a.net);
    if (!net) continue;
    // The applications' own argument shape already includes the net's input axes: divide them out.
    const inner = product(net.inShape);
    const runs = Math.max(1, a.times / Math.max(1, inner));
    const one = netActivations(net, nets);
    activations += perSample * runs * one;
    consider(perSample * runs * Math.max(product(net.outShape), 1), `the output of net \`${net.name}\``, true);
  }
  for (const d of [...ir.data, ...ir.memories]) activations += sizes.batch * product(d.type.shape.map((s) => sizeValue(s, m)));
  // The backward pass keeps about as much again as the forward pass.
  const activationBytes = 2 * activations * FLOAT_BYTES;
  return { parameters, parameterBytes, activationBytes, totalBytes: parameterBytes + activationBytes, largest };
}

/** `1.2 GiB`, `512 MiB`, `3.0e+3 TiB`. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(v)} bytes`;
  return `${v >= 10000 ? v.toExponential(1) : v.toFixed(1)} ${units[i]}`;
}

function formatCount(n: number): string {
  return n < 1e15 ? Math.round(n).toLocaleString('en-US') : n.toExponential(2);
}

/** The figures in one phrase: "1,234,567 parameters (18.8 MiB with gradients and Adam slots), activations about 42.0 MiB". */
export function describeBudget(f: BudgetFigures, sizes: BudgetSizes): string {
  return (
    `${formatCount(f.parameters)} parameters (${formatBytes(f.parameterBytes)} with gradients${sizes.adam ? ' and Adam slots' : ''}), ` +
    `activations about ${formatBytes(f.activationBytes)} at batch ${sizes.batch}, k ${sizes.k}, memory ${sizes.memorySize}`
  );
}

type Setting = 'batch' | 'k' | 'memory';

/**
 * The setting that dominates `measure`: the one whose smallest value (1) shrinks it the most, so
 * the advice names the memory size when a 10^6-entry memory is what does not fit, not the batch
 * (issue #22). Ties go to the batch, then k.
 */
function dominantSetting(ir: IrProgram, sizes: BudgetSizes, measure: (f: BudgetFigures) => number): Setting {
  const base = measure(estimateBudget(ir, sizes));
  const candidates: [Setting, BudgetSizes, boolean][] = [
    ['batch', { ...sizes, batch: 1 }, sizes.batch > 1],
    ['k', { ...sizes, k: 1 }, sizes.k > 1],
    ['memory', { ...sizes, memorySize: 1 }, sizes.memorySize > 1 && ir.memories.length > 0],
  ];
  let best: Setting = 'batch';
  let bestRatio = 0;
  for (const [setting, smaller, applies] of candidates) {
    if (!applies) continue;
    const ratio = base / Math.max(1, measure(estimateBudget(ir, smaller)));
    if (ratio > bestRatio) {
      best = setting;
      bestRatio = ratio;
    }
  }
  return best;
}

/**
 * Undefined when the model fits at these sizes in `maxBytes`, else a one-line problem with the
 * figures. The caller locates it (a diagnostic at the net) or prints it (a command-line error).
 */
export function budgetProblem(ir: IrProgram, sizes: BudgetSizes, maxBytes: number = DEFAULT_MAX_BYTES): BudgetProblem | undefined {
  const figures = estimateBudget(ir, sizes);
  const culpritOf = (owner: string): BudgetProblem['culprit'] => {
    const m = /^(net|param) `(.*)`$/.exec(owner);
    return m ? { kind: m[1] as 'net' | 'param', name: m[2]! } : undefined;
  };
  if (figures.largest.elements > MAX_TENSOR_ELEMENTS) {
    const big = figures.largest;
    const culprit = big.activation ? undefined : culpritOf(big.owner);
    const byMemory = big.activation && dominantSetting(ir, sizes, (f) => f.largest.elements) === 'memory';
    const what = big.activation ? `${big.owner} at batch ${sizes.batch} x k ${sizes.k}${byMemory ? ` with memory ${sizes.memorySize}` : ''} is` : `${big.owner} needs`;
    const advice = !big.activation ? 'make it smaller' : byMemory ? 'lower the memory size (it dominates: the batch size and k count less)' : 'lower the batch size or k';
    return {
      message: `the model does not fit: ${what} a tensor of ${formatCount(big.elements)} numbers, more than the ${formatCount(MAX_TENSOR_ELEMENTS)} a backend can hold; ${describeBudget(figures, sizes)}; ${advice}`,
      ...(culprit ? { culprit } : {}),
      figures,
    };
  }
  if (figures.totalBytes > maxBytes) {
    const params = figures.parameterBytes >= figures.activationBytes;
    const culprit = params ? culpritOf(figures.largest.owner) : undefined;
    const dominant = params ? undefined : dominantSetting(ir, sizes, (f) => f.activationBytes);
    const advice =
      dominant === undefined
        ? 'make the nets or params smaller'
        : dominant === 'memory'
          ? 'lower the memory size first (it dominates), then the batch size or k'
          : dominant === 'k'
            ? 'lower k first (it dominates), then the batch size or the memory size'
            : 'lower the batch size, k or the memory size';
    return {
      message: `the model does not fit: training needs about ${formatBytes(figures.totalBytes)}, more than the ${formatBytes(maxBytes)} available; ${describeBudget(figures, sizes)}; ${advice}`,
      ...(culprit ? { culprit } : {}),
      figures,
    };
  }
  return undefined;
}
