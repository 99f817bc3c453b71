/**
 * Folding a net's last linear layer through the product that consumes its output: an algebraic
 * rewrite the lowering applies where it does less arithmetic, never where it does more.
 *
 * For an MLP whose last layer is linear, `f(v) = body(v) W + b` (nets.ts `linearTail`):
 *
 *   keys      `f(E) @ u`            = body(E) @ (W u) + b . u          (address logits
 *             `h(mem) @ h(x)` of Bornschein et al. 2017: the last layer moves from the M entries
 *             to the query)
 *   soft read `sum_i w_i f(e_i)`    = (sum_i w_i body(e_i)) W + b       (soft attention over
 *             `g(mem[a])`: the last layer moves from the M entries to the one blended row; exact
 *             because the weights are a distribution over the entries, summing to 1)
 *
 * Both are identities of real arithmetic, so values agree with the unfolded computation up to
 * float rounding, and so do the gradients of the parameters (for the soft read, the weights'
 * gradient differs by `b . dy` added to every entry, a constant shift that the softmax the
 * weights come from maps to zero). What changes is the work: per row of the right-hand side, the
 * last layer runs once instead of once per entry. In the benchmark model (bench-model.md) at M =
 * 128 hard that removes h's second layer over 4,096 entries (3 x 134 M multiply-adds a step of
 * ~2.6 G); at M = 32 soft, h's second layer and g's third over 1,024 entries (~0.26 G of ~2.0 G).
 *
 * The rewrite is chosen per product by counting multiply-adds (`foldsKeys`, `foldsBlend`), so a
 * shared memory read by many queries (more query rows than entries) keeps the unfolded form, and
 * so does a product where the saving is smaller than what the fold adds: about nine kernel calls
 * for the keys (the query's two small products, the add, and their gradients), 0.3-0.4 ms a step
 * on the wasm backend, about what 2^23 multiply-adds forward (x3 with the backward pass) cost on
 * two cores. Measured (bench/fold.ts, docs/benchmarks.md): the folded step 2-5% slower at M = 8
 * soft, where the saving is 4-6 M multiply-adds; 8-12% faster from M = 32 soft and M = 128 hard. `VMM_FOLD=0` (or `new CompiledModel(ir, seed, { fold: false })`) turns it off, for A/B
 * runs and for the tests that compare the two; `{ fold: { minSaving: 0 } }` folds whatever saves.
 */
import { RunError } from '../diagnostics/errors.ts';

/** Forward multiply-adds a fold must save to be worth its extra kernels (see above). */
export const FOLD_MIN_SAVING = 2 ** 23;

/**
 * The environment's choice: folding is on unless `VMM_FOLD=0` (`1` or unset: on). Another value
 * is a RunError naming the accepted ones, so that a misspelt switch does not time the wrong side
 * of an A/B comparison.
 */
export function foldFromEnv(): boolean {
  const v = process.env['VMM_FOLD'];
  if (v === undefined || v === '' || v === '1') return true;
  if (v === '0') return false;
  throw new RunError(`VMM_FOLD=${v}: expected 0 (no folding) or 1 (fold where it saves work, the default)`);
}

/** The widths of a folded net: its last layer maps `width` to `outWidth`. */
export interface TailWidths {
  width: number;
  outWidth: number;
}

/**
 * Whether `f(E) @ u` is cheaper folded by more than `minSaving` multiply-adds. `entryRows`: rows f would run on (all plates and entries);
 * `queryRows`: rows of u; `entries`: the entries each query is scored against (M).
 * Unfolded: the last layer over every entry row. Folded: `W u` per query row, and every
 * (query, entry) dot product `width` long instead of `outWidth`.
 */
export function foldsKeys(t: TailWidths, entryRows: number, queryRows: number, entries: number, minSaving = FOLD_MIN_SAVING): boolean {
  const unfolded = entryRows * t.width * t.outWidth + queryRows * entries * t.outWidth;
  const folded = queryRows * t.width * t.outWidth + queryRows * entries * t.width;
  return unfolded - folded > Math.max(0, minSaving);
}

/**
 * Whether `sum_i w_i f(e_i)` is cheaper folded by more than `minSaving` multiply-adds. `entryRows`: rows f would run on (all plates and
 * entries); `weightRows`: rows of weights; `entries`: M.
 */
export function foldsBlend(t: TailWidths, entryRows: number, weightRows: number, entries: number, minSaving = FOLD_MIN_SAVING): boolean {
  const unfolded = entryRows * t.width * t.outWidth + weightRows * entries * t.outWidth;
  const folded = weightRows * entries * t.width + weightRows * t.width * t.outWidth;
  return unfolded - folded > Math.max(0, minSaving);
}

/** The cache key under which the hidden value `body(E)` of a net application `f(E)` is kept. */
export function bodyKey(netKey: string): string {
  return `body:${netKey}`;
}
