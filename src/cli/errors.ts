/** Misuse of the command (exit code 2): a missing file, an unknown variant, a bad flag value. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A run that failed for a reason the user can act on (exit code 1): NaN loss, missing data, ... */
export class RunError extends Error {
  override name = 'RunError';
}
