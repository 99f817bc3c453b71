/**
 * Failures the user can act on, below the CLI: the runtime throws them, the CLI prints them as one
 * line with exit code 1 (src/cli/main.ts). Here, in a leaf folder, so that src/runtime/ need not
 * import src/cli/ (.dependency-cruiser.cjs, "runtime-below-cli").
 */

/** A run that failed for a reason the user can act on (exit code 1): NaN loss, missing data, a damaged run folder, ... */
export class RunError extends Error {
  override name = 'RunError';
}

/** A mistake in what a library caller passed (an input name the model does not have, a bad count). */
export class InputError extends Error {
  override readonly name = 'InputError';
}
