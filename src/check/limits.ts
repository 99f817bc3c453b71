/**
 * The numeric limits of every training setting, in one table used by both places a setting can
 * come from: the `train { }` block (src/check/train.ts, diagnostic VMM3005) and the command-line
 * flags (src/cli/, a one-line usage error). A value the checker accepts is a value the CLI accepts
 * and the other way round, so a program that checks does not fail on a setting at run time.
 *
 * The bounds are where a run stops making sense or stops being representable: a step counter
 * above 2^53 loses whole numbers, an infinite learning rate makes every weight NaN at step one.
 * How much memory a batch or a number of samples needs is a separate question (./budget.ts).
 * An estimator's own numeric arguments (relaxed's `temperature`) carry their limits in the
 * estimator's registry entry; the shape of a limit and its test are src/ir/limits.ts.
 */

import { describeLimit, outsideLimit, parseWithin, type Limit } from '../ir/limits.ts';

export { describeLimit, type Limit };

export const LIMITS = {
  steps: { what: 'the number of training steps', integer: true, min: 1, max: Number.MAX_SAFE_INTEGER },
  batch: { what: 'the batch size', integer: true, min: 1, max: 1_000_000 },
  k: { what: 'the number of samples `k`', integer: true, min: 1, max: 100_000 },
  lr: { what: 'the learning rate `lr`', integer: false, min: 0, minExclusive: true, max: 1000 },
  classes: { what: 'the number of classes in memory', integer: true, min: 1, max: 100_000 },
  shots: { what: 'the number of shots per class', integer: true, min: 1, max: 100_000 },
  minShots: { what: 'the fewest shots per class `min_shots`', integer: true, min: 1, max: 100_000 },
  distractors: { what: 'the number of distractor entries', integer: true, min: 0, max: 1_000_000 },
  seed: { what: 'the seed', integer: true, min: 0, max: 2 ** 32 - 1 },
  checkpointEvery: { what: 'the steps between checkpoints', integer: true, min: 1, max: Number.MAX_SAFE_INTEGER },
  validEvery: { what: 'the steps between validations', integer: true, min: 1, max: Number.MAX_SAFE_INTEGER },
  validSize: { what: 'the number of validation examples', integer: true, min: 1, max: 10_000_000 },
  samples: { what: 'the number of samples', integer: true, min: 1, max: 1_000_000 },
  episodes: { what: 'the number of episodes', integer: true, min: 1, max: 10_000_000 },
  rows: { what: 'the number of rows', integer: true, min: 1, max: 10_000 },
  seeds: { what: 'the number of seeds', integer: true, min: 1, max: 100 },
  top: { what: 'the number of entries listed', integer: true, min: 1, max: 1_000_000 },
  clip: { what: 'the gradient norm `clip`', integer: false, min: 0, minExclusive: true, max: 1e12 },
  topk: { what: 'the number of top entries `k` of the address proposal', integer: true, min: 1, max: 1_000_000 },
  tail: { what: 'the number of tail entries `tail` of the address proposal', integer: true, min: 0, max: 1_000_000 },
  refresh: { what: 'the steps between recomputations of the cached keys `refresh`', integer: true, min: 1, max: 1_000_000_000 },
  probe: { what: 'the number of key buckets searched `probe`', integer: true, min: 1, max: 1_000_000 },
  minutes: { what: 'the time budget in minutes', integer: false, min: 0, minExclusive: true, max: 1_000_000 },
} as const satisfies Record<string, Limit>;

export type LimitName = keyof typeof LIMITS;

/** Undefined when `v` is within the limit, else why not (without the setting's name). */
export function limitProblem(name: LimitName, v: number): string | undefined {
  return outsideLimit(LIMITS[name], v);
}

/**
 * Parses a command-line value against a limit: the number, or a message that echoes what the
 * user typed (`--seed expects a whole number from 0 to 2^32 - 1, got '-5'`).
 */
export function parseLimited(name: LimitName, text: string, flag: string): number | string {
  return parseWithin(LIMITS[name], text, flag);
}
