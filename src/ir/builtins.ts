/**
 * The built-in functions as one signature table, the way stanc3 keeps Stan's library functions
 * (`Stan_math_signatures`): each row says everything the front end needs about one function (its
 * name, arity, what its arguments must be, the type of its result, a line of documentation and an
 * example), and nothing else in the front end switches on a built-in's name. The checker
 * (src/check/exprs.ts, `checkBuiltin`) applies a row and locates its complaints; the language
 * server (src/lsp/features.ts) shows `usage` and `doc` on hover and completion; the IR printer
 * prints a call as `name(args)`.
 *
 * The table lives in the IR because it is data that the stages on both sides read: the checker
 * (which may not import the lowering) and every target. Each target keys its lowering by the same
 * names: tfjs in src/lower/builtins.ts, a `Record<BuiltinName, ...>`, so a row without its lowering
 * does not compile. A new built-in is one row here and one entry there (docs/extending.md,
 * "A built-in function").
 */
import { addSize, formatSize, formatType, shapeEq, sizeEq } from './size.ts';
import type { Shape, Size, ValueType } from './types.ts';

/** An argument as the checker sees it: its type, and how a message names it ("`x : real[8]`"). */
export interface BuiltinArg {
  type: ValueType;
  text: string;
}

/**
 * Why the arguments do not fit (VMM2020: sizes disagree; VMM2025: the wrong number of axes). The
 * checker reports it at argument `at` (the whole call when absent), with a note at argument
 * `note.at`.
 */
export interface BuiltinMismatch {
  code: 'VMM2020' | 'VMM2025';
  message: string;
  at?: number;
  note?: { at: number; message: string };
}

export interface BuiltinSpec {
  name: string;
  /** How it is called, for messages, hover and the language reference: `dot(a, b)`. */
  usage: string;
  /** One line: what it computes, with shapes where they help. */
  doc: string;
  /** A use in a model. */
  example: string;
  /** The number of (positional) arguments: `max` Infinity for a list. */
  arity: { min: number; max: number };
  /**
   * Each argument needs at least one axis; the clause says why (`joins along the last axis`),
   * reported as "`dot` contracts the last axis, but `s : real[]` is a scalar" (VMM2025).
   */
  needsAxis?: string;
  /** The result's type from the arguments' (all numeric, each with an axis where `needsAxis`). */
  result(args: readonly BuiltinArg[]): ValueType | BuiltinMismatch;
  /** A `stack` of tables is a table (the checker names it after its first memory). */
  joinsTables?: boolean;
  /**
   * Why it mixes the entries of a table, when it does (a softmax, a pooling, attention): the
   * address-key analysis (src/runtime/address_keys.ts) cannot then read keys one entry at a time.
   */
  mixes?: string;
}

const real = (shape: Shape): ValueType => ({ elem: 'real', shape });
const last = (t: ValueType): Size => t.shape[t.shape.length - 1]!;

/**
 * A function applied to every element: the result has its argument's shape. (The helpers keep
 * the row's name a literal type, so that `BuiltinName` is the union of the names and a lowering
 * table missing a row does not compile.)
 */
function elementwise<N extends string>(name: N, doc: string, example: string, extra: Partial<Omit<BuiltinSpec, 'name'>> = {}): BuiltinSpec & { name: N } {
  return { name, usage: `${name}(e)`, doc, example, arity: { min: 1, max: 1 }, result: ([a]) => real(a!.type.shape), ...extra };
}

/** A reduction of the last axis: `[..., N] -> [...]`. */
function lastAxis<N extends string>(name: N, doc: string, example: string): BuiltinSpec & { name: N } {
  return { name, usage: `${name}(e)`, doc, example, arity: { min: 1, max: 1 }, needsAxis: 'reduces the last axis', result: ([a]) => real(a!.type.shape.slice(0, -1)) };
}

/** `concat` (the last axis) and `stack` (the first): the other axes agree, the joined one adds up. */
function join<N extends 'concat' | 'stack'>(name: N, doc: string, example: string): BuiltinSpec & { name: N } {
  const first = name === 'stack';
  const keep = (s: Shape) => (first ? s.slice(1) : s.slice(0, -1));
  const joined = (t: ValueType) => (first ? t.shape[0]! : last(t));
  return {
    name,
    usage: `${name}(a, b, ...)`,
    doc,
    example,
    arity: { min: 2, max: Infinity },
    needsAxis: first ? 'joins along the first axis' : 'joins along the last axis',
    ...(first ? { joinsTables: true } : {}),
    result: (args) => {
      const t0 = args[0]!.type;
      let size = joined(t0);
      for (let i = 1; i < args.length; i++) {
        const t = args[i]!.type;
        if (t.shape.length !== t0.shape.length || !shapeEq(keep(t.shape), keep(t0.shape))) {
          const axes = first ? 'all axes after the first' : 'all axes but the last';
          return {
            code: 'VMM2020',
            message: `\`${name}\` needs arguments that agree on ${axes}: ${args[i]!.text} does not fit ${args[0]!.text}`,
            at: i,
            note: { at: 0, message: `the first argument has type ${formatType(t0)}` },
          };
        }
        size = addSize(size, joined(t));
      }
      const elem = args.every((a) => a.type.elem === t0.elem) ? t0.elem : 'real';
      return { elem, shape: first ? [size, ...t0.shape.slice(1)] : [...t0.shape.slice(0, -1), size] };
    },
  };
}

/**
 * The conjugate Gaussian update of S slots from M weighted observations (the posterior of a
 * Gaussian mean with known observation precisions, each observation counted with its weight, as a
 * Kanerva Machine's or a Neural Statistician's pooled update): per coordinate d,
 *
 *     prec_sd = prior_prec_sd + sum_i w_is obs_prec_id
 *     mean_sd = (prior_prec_sd prior_mean_sd + sum_i w_is obs_prec_id v_id) / prec_sd
 *
 * `gauss_pool(values [M, D], weights [M, S], prior_mean [S, D], prior_prec [S, D], obs_prec)` is
 * the mean, `gauss_pool_prec(weights [M, S], prior_prec [S, D], obs_prec)` the precision; `obs_prec`
 * is [M, D] or a scalar. The precisions must be positive (write them through `softplus` or `exp`):
 * the update adds evidence, so a slot's precision only grows as entries are assigned to it.
 */
function gaussPool<N extends 'gauss_pool' | 'gauss_pool_prec'>(name: N, what: string, example: string): BuiltinSpec & { name: N } {
  const mean = name === 'gauss_pool';
  const names = mean ? ['values', 'weights', 'prior_mean', 'prior_prec', 'obs_prec'] : ['weights', 'prior_prec', 'obs_prec'];
  const usage = `${name}(${names.join(', ')})`;
  return {
    name,
    usage,
    doc: `${what} by the conjugate update from the entries weighted by \`weights\`: ${mean ? 'values [M, D], weights [M, S], prior_mean [S, D], prior_prec [S, D]' : 'weights [M, S], prior_prec [S, D]'}, obs_prec [M, D] or a scalar -> [S, D]`,
    example,
    arity: { min: names.length, max: names.length },
    mixes: 'a pooling over the entries',
    result: (args) => {
      const at = (n: string) => names.indexOf(n);
      const arg = (n: string) => args[at(n)]!;
      const want: Record<string, string> = { values: '[M, D]', weights: '[M, S]', prior_mean: '[S, D]', prior_prec: '[S, D]', obs_prec: '[M, D] or a scalar' };
      for (const n of names) {
        const rank = arg(n).type.shape.length;
        if (rank !== 2 && !(n === 'obs_prec' && rank === 0)) {
          return { code: 'VMM2025', message: `\`${name}\` takes ${n} ${want[n]}, but ${arg(n).text} has ${rank} ax${rank === 1 ? 'is' : 'es'}`, at: at(n) };
        }
      }
      const w = arg('weights').type.shape;
      const prior = arg('prior_prec').type.shape;
      const [m, s, d] = [w[0]!, w[1]!, prior[1]!];
      // Each argument's axes, by name: the first mismatch is reported at its argument, with a note at the one that fixed the size.
      const axes: Array<[string, number, Size, string, string]> = [
        ['prior_prec', 0, s, 'weights', 'S'],
        ...(mean
          ? ([
              ['values', 0, m, 'weights', 'M'],
              ['values', 1, d, 'prior_prec', 'D'],
              ['prior_mean', 0, s, 'weights', 'S'],
              ['prior_mean', 1, d, 'prior_prec', 'D'],
            ] as Array<[string, number, Size, string, string]>)
          : []),
        ...(arg('obs_prec').type.shape.length === 2
          ? ([
              ['obs_prec', 0, m, 'weights', 'M'],
              ['obs_prec', 1, d, 'prior_prec', 'D'],
            ] as Array<[string, number, Size, string, string]>)
          : []),
      ];
      for (const [n, axis, size, from, sym] of axes) {
        const got = arg(n).type.shape[axis]!;
        if (!sizeEq(got, size)) {
          return {
            code: 'VMM2020',
            message: `\`${name}\` needs ${n} ${want[n]} with ${sym} = ${formatSize(size)} (from ${from}), but ${arg(n).text} has ${formatSize(got)}`,
            at: at(n),
            note: { at: at(from), message: `${from} ${want[from]} has type ${formatType(arg(from).type)}` },
          };
        }
      }
      return real([s, d]);
    },
  };
}

const TABLE = [
  join('concat', 'joins along the last axis', 'dec(concat(z, r))'),
  join('stack', 'joins along the first axis (a stack of tables is a table)', 'let entries = stack(mem, dummies)'),
  {
    name: 'dot',
    usage: 'dot(a, b)',
    doc: 'contracts the last axis: [..., H], [..., H] -> [...]',
    example: 'Categorical(logits: dot(h(mem), h(x)))',
    arity: { min: 2, max: 2 },
    needsAxis: 'contracts the last axis',
    result: ([a, b]) => {
      const [ta, tb] = [a!.type, b!.type];
      const [leadA, leadB] = [ta.shape.slice(0, -1), tb.shape.slice(0, -1)];
      if (!sizeEq(last(ta), last(tb)) || !(shapeEq(leadA, leadB) || leadA.length === 0 || leadB.length === 0)) {
        return { code: 'VMM2020', message: `\`dot\` needs the same last axis (and equal leading axes, or none on one side): found ${formatType(ta)} and ${formatType(tb)}` };
      }
      return real(leadA.length >= leadB.length ? leadA : leadB);
    },
  },
  lastAxis('sum', 'reduces the last axis', 'sum(h(x))'),
  lastAxis('mean', 'averages over the last axis', 'mean(h(x))'),
  lastAxis('max', 'the largest element of the last axis (its gradient goes to the largest)', 'max(h(x))'),
  // Numerically stable: m + log sum_i exp(x_i - m) with m = max_i x_i, so no exp overflows.
  lastAxis('logsumexp', 'log sum_i exp(e_i) over the last axis, computed stably (a smooth maximum)', 'logsumexp(h(mem) @ h(x))'),
  {
    name: 'pool',
    usage: 'pool(entries)',
    doc: 'averages the entries (first axis) of a table: [M, H] -> [H]',
    example: 'let summary = pool(h(mem))',
    arity: { min: 1, max: 1 },
    needsAxis: 'averages the entries along the first axis',
    mixes: 'a pooling over the entries',
    result: ([a]) => real(a!.type.shape.slice(1)),
  },
  {
    name: 'attend',
    usage: 'attend(queries, keys, values)',
    doc: 'scaled dot-product attention (Vaswani et al. 2017); [S, H], [M, H], [M, V] -> [S, V]',
    example: 'let read = attend(q(x), key(mem), value(mem))',
    arity: { min: 3, max: 3 },
    mixes: 'attention',
    result: ([q, k, v]) => {
      const [tq, tk, tv] = [q!.type, k!.type, v!.type];
      const rank = (t: ValueType, lo: number, hi: number) => t.shape.length >= lo && t.shape.length <= hi;
      if (!rank(tq, 1, 2) || !rank(tk, 2, 2) || !rank(tv, 2, 2)) {
        return { code: 'VMM2025', message: `\`attend\` takes queries [S, H] or [H], keys [M, H] and values [M, V]; found ${formatType(tq)}, ${formatType(tk)} and ${formatType(tv)}` };
      }
      if (!sizeEq(last(tq), tk.shape[1]!)) {
        return { code: 'VMM2020', message: `\`attend\` compares queries and keys along their last axis: ${q!.text} does not fit ${k!.text}`, at: 1 };
      }
      if (!sizeEq(tk.shape[0]!, tv.shape[0]!)) {
        return { code: 'VMM2020', message: `\`attend\` needs one value per key: ${k!.text} and ${v!.text} have different numbers of entries`, at: 2 };
      }
      return real([...tq.shape.slice(0, -1), tv.shape[1]!]);
    },
  },
  {
    name: 'transpose',
    usage: 'transpose(t)',
    doc: 'swaps the two axes of a matrix: [A, B] -> [B, A]',
    example: 'let by_slot = transpose(softmax(assign(h(mem))))',
    arity: { min: 1, max: 1 },
    result: ([a]) => {
      const t = a!.type;
      if (t.shape.length !== 2) return { code: 'VMM2025', message: `\`transpose\` swaps the two axes of a matrix, but ${a!.text} has ${t.shape.length} ax${t.shape.length === 1 ? 'is' : 'es'}`, at: 0 };
      return real([t.shape[1]!, t.shape[0]!]);
    },
  },
  gaussPool('gauss_pool', 'the posterior means of S Gaussian slots', 'let slot_mean = gauss_pool(val(e), w, mu0, softplus(p0), softplus(r(e)))'),
  gaussPool('gauss_pool_prec', 'the posterior precisions of S Gaussian slots', 'let slot_prec = gauss_pool_prec(w, softplus(p0), softplus(r(e)))'),
  elementwise('softplus', 'elementwise log(1 + exp(e))', 'Normal(loc, softplus(s(x)))'),
  elementwise('sigmoid', 'elementwise 1 / (1 + exp(-e))', 'sigmoid(g(x))'),
  elementwise('tanh', 'elementwise', 'tanh(g(x))'),
  elementwise('relu', 'elementwise (in a net: an activation layer)', 'relu(g(x))'),
  elementwise('exp', 'elementwise', 'exp(g(x))'),
  elementwise('log', 'elementwise', 'log(p)'),
  elementwise('softmax', 'normalizes the last axis to probabilities', 'softmax(h(mem) @ h(x))', { mixes: 'a softmax' }),
] as const satisfies readonly BuiltinSpec[];

/** The name of a built-in function: a target's lowering table is keyed by it. */
export type BuiltinName = (typeof TABLE)[number]['name'];

const BY_NAME = new Map<string, BuiltinSpec>(TABLE.map((r) => [r.name, r]));

/** Every built-in, in the table's order (messages list them in it). */
export function builtins(): readonly BuiltinSpec[] {
  return TABLE;
}

export function builtinNames(): BuiltinName[] {
  return TABLE.map((r) => r.name);
}

export function builtin(name: string): BuiltinSpec | undefined {
  return BY_NAME.get(name);
}

export function isBuiltinName(name: string): name is BuiltinName {
  return BY_NAME.has(name);
}
