/**
 * Runs that cannot be wedged (issue #22): `vmm train` killed with SIGKILL at scripted points
 * (VMM_KILL_AT, src/runtime/fault.ts) leaves a folder that `train --out` and `train --resume`
 * describe the same way, and one of them continues it; a second writer of one folder is refused
 * with the holder's pid and start time, and the lock of a killed writer is taken over; a resumed
 * run's metrics hold each step once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as run } from '../cli/run_cli.ts';
import { RunDir, runState } from '../../src/jobs/run_dir.ts';
import { LOCK_FILE } from '../../src/jobs/run_lock.ts';

const ROOT = resolve(__dirname, '..', '..');
const VAE = join(ROOT, 'models', 'vae.vmm');
const tmp = mkdtempSync(join(tmpdir(), 'vmm-run-faults-'));
const tiny = ['--batch', '2', '--valid-size', '2', '--valid-every', '1', '--quiet', '--backend', 'wasm'];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

/** Starts `vmm train VAE --out DIR ...` in a child process, killed at `killAt` (if given). */
function trainChild(out: string, steps: number, killAt?: string, checkpointEvery = 2): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; err: string }> } {
  const env = { ...process.env, VMM_KILL_AT: killAt ?? '' };
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'vmm.mjs'), 'train', VAE, '--out', out, '--steps', String(steps), '--checkpoint-every', String(checkpointEvery), ...tiny], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; signal: string | null; err: string }>((ok) => child.on('exit', (code, signal) => ok({ code, signal, err })));
  return { child, done };
}

/** The (kind, step) of every metrics record, each step's records counted. */
function duplicates(dir: string): string[] {
  const seen = new Map<string, number>();
  for (const r of new RunDir(dir).readMetrics()) {
    const key = `${String(r['kind'])}@${String(r['step'])}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen].filter(([, n]) => n > 1).map(([k]) => k);
}

function oneLine(err: string): string {
  const lines = err.split('\n').filter((l) => l.trim() && !l.startsWith('backend: '));
  expect(lines, err).toHaveLength(1);
  expect(err).not.toContain('internal error');
  return lines[0]!;
}

describe('kill -9 at scripted points', () => {
  const killed = {
    created: join(tmp, 'killed-created'),
    firstCheckpoint: join(tmp, 'killed-first-checkpoint'),
    renamed: join(tmp, 'killed-renamed'),
    afterCheckpoint: join(tmp, 'killed-after-checkpoint'),
  };
  const holderDir = join(tmp, 'held');
  let holder: ReturnType<typeof trainChild>;

  beforeAll(async () => {
    // All children at once (each pays the start-up of tsx and tfjs); the long one holds its folder's lock.
    holder = trainChild(holderDir, 100_000, undefined, 100_000);
    const runs = [
      trainChild(killed.created, 3, 'run:created'),
      trainChild(killed.firstCheckpoint, 3, 'checkpoint:written@1'),
      trainChild(killed.renamed, 3, 'checkpoint:renamed@1'),
      trainChild(killed.afterCheckpoint, 3, 'step:logged@3'),
    ];
    for (const r of await Promise.all(runs.map((x) => x.done))) expect(r.signal, r.err).toBe('SIGKILL');
    while (!existsSync(join(holderDir, LOCK_FILE)) || !existsSync(join(holderDir, 'config.json'))) {
      if (holder.child.exitCode !== null) throw new Error(`the lock holder exited: ${(await holder.done).err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 60_000);

  it('a kill during the first checkpoint write leaves a "new" run: --resume and --out agree, and --out starts it again', async () => {
    for (const dir of [killed.created, killed.firstCheckpoint]) {
      expect(existsSync(join(dir, LOCK_FILE)), 'the killed writer left its lock').toBe(true);
      expect(runState(dir)).toBe('new');
      const resumed = await run('train', '--resume', dir, '--quiet', '--backend', 'wasm');
      expect(resumed.code).toBe(1);
      const line = oneLine(resumed.err);
      expect(line).toContain('never reached its first checkpoint');
      expect(line).toContain(`vmm train ${VAE} --out ${dir}`);
      // What the message says works (taking over the dead writer's lock).
      const again = await run('train', VAE, '--out', dir, '--steps', '3', '--checkpoint-every', '2', ...tiny);
      expect(again.code, again.err).toBe(0);
      expect(runState(dir)).toBe('finished');
      expect(duplicates(dir)).toEqual([]);
      expect(readdirSync(dir)).not.toContain(LOCK_FILE);
      expect(readdirSync(join(dir, 'checkpoint'))).toEqual(['checkpoint.safetensors']);
    }
  }, 30_000);

  it('a kill after the first checkpoint: --out sends to --resume, which continues it', async () => {
    for (const dir of [killed.renamed, killed.afterCheckpoint]) {
      expect(runState(dir)).toBe('has checkpoint');
      const fresh = await run('train', VAE, '--out', dir, ...tiny);
      expect(fresh.code).toBe(1);
      expect(oneLine(fresh.err)).toContain(`--resume ${dir}`);
      const resumed = await run('train', '--resume', dir, '--quiet', '--backend', 'wasm');
      expect(resumed.code, resumed.err).toBe(0);
      expect(runState(dir)).toBe('finished');
    }
  }, 30_000);

  it('a resumed run keeps one record per step: those written after the checkpoint are dropped', () => {
    // Killed after step 3's records, with the checkpoint at step 2: step 3 was taken twice.
    const records = new RunDir(killed.afterCheckpoint).readMetrics();
    expect(duplicates(killed.afterCheckpoint)).toEqual([]);
    expect(records.filter((r) => r['kind'] === 'train').map((r) => r['step'])).toEqual([1, 2, 3]);
  });

  it('a second writer is refused with the holder\'s pid and start time; a killed holder\'s lock is taken over', async () => {
    const second = await run('train', VAE, '--out', holderDir, '--steps', '3', ...tiny);
    expect(second.code).toBe(1);
    const line = oneLine(second.err);
    expect(line).toContain(`process ${holder.child.pid} has been training into it since`);
    expect(line).toMatch(/since \d{4}-\d\d-\d\dT/);
    const resumed = await run('train', '--resume', holderDir, '--quiet', '--backend', 'wasm');
    expect(resumed.code).toBe(1);
    expect(resumed.err).toMatch(/never reached its first checkpoint|is in use/);
    holder.child.kill('SIGKILL');
    await holder.done;
    const after = await run('train', VAE, '--out', holderDir, '--steps', '3', '--checkpoint-every', '2', ...tiny);
    expect(after.code, after.err).toBe(0);
    expect(readFileSync(join(holderDir, 'summary.json'), 'utf8')).toContain('"steps": 3');
  }, 30_000);
});
