/**
 * The range a numeric setting may take, as data: whole or not, a minimum (maybe excluded) and a
 * maximum, with what the setting is in words. The training settings' table is src/check/limits.ts;
 * an estimator's own numeric arguments carry theirs in their registry entry
 * (src/estimators/spec.ts). Both places a value can come from, the `train { }` block and the
 * command line, test it here, so they accept the same values.
 */

export interface Limit {
  /** What the setting is, as the messages say it. */
  what: string;
  integer: boolean;
  min: number;
  /** `min` itself is excluded (a learning rate must be above 0). */
  minExclusive?: boolean;
  max: number;
}

function show(n: number): string {
  if (n === Number.MAX_SAFE_INTEGER) return '2^53 - 1';
  if (n === 2 ** 32 - 1) return '2^32 - 1';
  return Number.isInteger(n) && Math.abs(n) >= 10_000 ? n.toLocaleString('en-US') : String(n);
}

/** What values the limit allows, e.g. "a whole number from 1 to 1,000,000". */
export function describeLimit(l: Limit): string {
  if (l.integer) return `a whole number from ${show(l.min)} to ${show(l.max)}`;
  return l.minExclusive ? `a number above ${show(l.min)} and at most ${show(l.max)}` : `a number from ${show(l.min)} to ${show(l.max)}`;
}

/** Undefined when `v` is within `l`, else why not (without the setting's name). */
export function outsideLimit(l: Limit, v: number): string | undefined {
  const ok = Number.isFinite(v) && (!l.integer || Number.isInteger(v)) && (l.minExclusive ? v > l.min : v >= l.min) && v <= l.max;
  return ok ? undefined : `must be ${describeLimit(l)}`;
}

/**
 * Parses a command-line value against a limit: the number, or a message that echoes what the
 * user typed (`--seed expects a whole number from 0 to 2^32 - 1, got '-5'`).
 */
export function parseWithin(l: Limit, text: string, flag: string): number | string {
  const trimmed = text.trim();
  const v = trimmed === '' ? NaN : Number(trimmed);
  return outsideLimit(l, v) === undefined ? v : `${flag} expects ${describeLimit(l)}, got '${text}'`;
}
