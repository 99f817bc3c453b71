/**
 * The two kinds of failure the user can act on, and how every other error is told apart from a
 * bug. Exit codes: 2 for misuse of the command, 1 for a failed run or a file that cannot be read
 * or written; an internal error (a bug) is the only failure that prints a JavaScript stack.
 */

/** Misuse of the command (exit code 2): a missing file, an unknown variant, a bad flag value. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export { RunError } from '../diagnostics/errors.ts';

/** Errors of other modules that are the user's to fix, never a bug (matched by name: the CLI must not load tfjs to test `instanceof`). */
const USER_ERROR_NAMES = new Set(['RunError', 'DataError', 'BackendError', 'CheckpointError', 'InputError', 'SettingsError']);

export function isUserError(e: unknown): e is Error {
  return e instanceof Error && USER_ERROR_NAMES.has(e.name);
}

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  EEXIST: 'it already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
};

/** A failed file-system call (EACCES, ENOSPC, ...) as one line naming the file, or undefined for any other error. */
export function fileSystemMessage(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof err.code !== 'string' || !(err.code in ERRNO_TEXT)) return undefined;
  const path = err.path ?? (err as { dest?: string }).dest;
  const verb = (
    {
      open: 'open',
      read: 'read',
      write: 'write',
      mkdir: 'create the folder',
      rename: 'write',
      unlink: 'remove',
      rmdir: 'remove',
      scandir: 'list',
      copyfile: 'copy',
    } as Record<string, string>
  )[err.syscall ?? ''];
  const what = path ? `cannot ${verb ?? 'use'} '${path}'` : `a file operation failed${err.syscall ? ` (${err.syscall})` : ''}`;
  return `${what}: ${ERRNO_TEXT[err.code]} (${err.code})`;
}

/** The message of a user error, with references to internal functions replaced by the commands that do the same. */
export function userMessage(e: Error): string {
  return e.message.replace(/the converter \(convertOmniglotZips\)/g, '`vmm convert-omniglot images_background.zip images_evaluation.zip --out DIR`');
}
