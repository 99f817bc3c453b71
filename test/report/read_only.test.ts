/**
 * A read-only file system is named as such (issue #22): Node's recursive mkdir reports ENOENT for
 * a folder it cannot make on a read-only mount (it stats the missing folder after EROFS), which
 * sent users looking for a missing parent. A read-only mount cannot be made without privileges,
 * so `node:fs` is mocked to fail the way Node does on one, below a folder of this test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdirpSync } from '../../src/report/atomic.ts';
import { runCli as run } from '../cli/run_cli.ts';

const ro = vi.hoisted(() => ({ root: '' }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const errno = (code: string, path: string) => Object.assign(new Error(`${code}: mkdir '${path}'`), { code, syscall: 'mkdir', path, errno: -1 });
  const mkdirSync = ((path: string, options?: { recursive?: boolean }) => {
    if (ro.root && String(path).startsWith(ro.root + '/') && !fs.existsSync(path)) {
      // What Node does on a read-only mount: the recursive form stats the folder it could not make.
      throw options?.recursive ? errno('ENOENT', String(path)) : errno('EROFS', String(path));
    }
    return fs.mkdirSync(path, options as never);
  }) as typeof fs.mkdirSync;
  return { ...fs, default: { ...fs, mkdirSync }, mkdirSync };
});

ro.root = mkdtempSync(join(tmpdir(), 'vmm-read-only-'));
afterAll(() => rmSync(ro.root, { recursive: true, force: true }));

describe('a read-only file system', () => {
  it('mkdirpSync throws EROFS naming the first folder it could not make', () => {
    expect(() => mkdirpSync(join(ro.root, 'a', 'b'))).toThrow(expect.objectContaining({ code: 'EROFS', path: join(ro.root, 'a') }));
  });

  it('train --out on it is one line saying "read-only file system (EROFS)"', async () => {
    const r = await run('train', join(__dirname, '..', '..', 'models', 'gmm.vmm'), '--out', join(ro.root, 'runs', 'gmm'), '--steps', '1', '--quiet', '--backend', 'wasm');
    expect(r.code).toBe(1);
    const lines = r.err.split('\n').filter((l) => l.trim() && !l.startsWith('backend: '));
    expect(lines).toEqual([`vmm: cannot create the folder '${join(ro.root, 'runs')}': read-only file system (EROFS)`]);
  });
});
