/**
 * The lock of a run folder: one training writes into a folder at a time (issue #22).
 *
 * `DIR/.vmm-lock` holds the writer's `{pid, host, startedAt, command}`. It is made whole or not at
 * all (written to a temporary file, then hard-linked to its name, which fails if the name exists),
 * removed when the writer finishes or exits, and left behind only by a killed one: a lock whose
 * process is gone (same host, pid not alive) is taken over; a live one is refused with its pid and
 * start time.
 *
 * Why not proper-lockfile: it tells a stale lock by an mtime the holder refreshes from a timer, and a
 * training step blocks the event loop for longer than any sensible refresh period, so a live run
 * would look stale (or be declared compromised). A process id needs no refreshing.
 */
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { RunError } from '../diagnostics/errors.ts';

export const LOCK_FILE = '.vmm-lock';

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

/** Lock files this process holds (absolute or as given), removed on exit. */
const held = new Set<string>();
let exitHook = false;

function releaseAllOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const file of held) removeIfOurs(file);
  });
}

function readHolder(file: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string' || typeof h.startedAt !== 'string') return undefined;
    return { pid: h.pid, host: h.host, startedAt: h.startedAt, command: typeof h.command === 'string' ? h.command : '' };
  } catch {
    return undefined;
  }
}

/** Whether a process with this id runs on this machine (one we may not signal runs, too). */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `holder` still holds its lock: a process of another host is assumed alive (its pid
 * cannot be checked from here); this process holds it only if it took it (a pid reused after a
 * restart is not us).
 */
function holderAlive(holder: LockHolder, file: string): boolean {
  if (holder.host !== hostname()) return true;
  if (holder.pid === process.pid) return held.has(file);
  return processAlive(holder.pid);
}

function removeIfOurs(file: string): void {
  if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
  held.delete(file);
}

/** What the refusal says about the holder. */
function describeHolder(dir: string, h: LockHolder): string {
  const who = h.pid === process.pid && h.host === hostname() ? 'this process' : `process ${h.pid}${h.host !== hostname() ? ` on ${h.host}` : ''}`;
  return (
    `${dir} is in use: ${who} has been training into it since ${h.startedAt}${h.command ? ` (${h.command})` : ''}; ` +
    `wait for it to finish or stop it, or pick another --out` +
    (h.host !== hostname() ? ` (if that process is gone, remove ${join(dir, LOCK_FILE)})` : '')
  );
}

/**
 * Takes the lock of run folder `dir` (which must exist) for this process, taking over a lock left
 * by a process that is gone; a RunError names a live holder.
 */
export function acquireRunLock(dir: string): void {
  const file = lockPath(dir);
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    command: ['vmm', ...process.argv.slice(2)].join(' ').slice(0, 300),
  };
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.${Math.floor(Math.random() * 0x100000000).toString(16)}.tmp`);
  writeFileSync(tmp, JSON.stringify(me) + '\n');
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkOrCreate(tmp, file, me);
        held.add(file);
        releaseAllOnExit();
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readHolder(file);
      if (holder && holderAlive(holder, file)) throw new RunError(describeHolder(dir, holder));
      // Gone (or a lock file that was never whole): take it over. Move it aside first, then check
      // that what was moved is what was judged stale, so that a lock another process took meanwhile is put back.
      const aside = `${file}.stale.${process.pid}`;
      try {
        renameSync(file, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const moved = readHolder(aside);
      if (moved && holderAlive(moved, file) && (moved.pid !== holder?.pid || moved.startedAt !== holder?.startedAt)) {
        try {
          linkSync(aside, file);
        } catch {
          // Someone else holds it by now; they keep it.
        }
        rmSync(aside, { force: true });
        throw new RunError(describeHolder(dir, moved));
      }
      rmSync(aside, { force: true });
    }
    throw new RunError(`${dir}: could not take the lock ${file} (other processes keep taking it); try again`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Makes `file` with the content of `tmp` atomically, failing with EEXIST if it exists: a hard link,
 * or, on a file system without hard links, an exclusive create (not atomic in its content: a lock
 * read half-written is judged stale only if its writer is gone).
 */
function linkOrCreate(tmp: string, file: string, me: LockHolder): void {
  try {
    linkSync(tmp, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    writeFileSync(file, JSON.stringify(me) + '\n', { flag: 'wx' });
  }
}

function lockPath(dir: string): string {
  return resolve(dir, LOCK_FILE);
}

/** Gives the lock of `dir` back (if this process holds it). */
export function releaseRunLock(dir: string): void {
  const file = lockPath(dir);
  if (held.has(file)) removeIfOurs(file);
}

/** Whether this process holds the lock of `dir`. */
export function holdsRunLock(dir: string): boolean {
  return held.has(lockPath(dir));
}

/**
 * The refusal for a folder whose lock another process holds, or undefined (also when this process
 * holds it: `acquireRunLock` is what refuses a second run of this process).
 */
export function runLockRefusal(dir: string): string | undefined {
  const file = lockPath(dir);
  if (held.has(file)) return undefined;
  const h = readHolder(file);
  return h && holderAlive(h, file) ? describeHolder(dir, h) : undefined;
}
