import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeCandidates, platformTag, resolveNative, type BlasModule, type NativeIo } from '../../src/runtime/blas.ts';

/**
 * The native module's load order (src/runtime/blas.ts): the package's prebuilt module for this
 * platform, else the source build, else none (wasm products) with the reason in words. Paths
 * and loading are injected, so no binary needs to exist.
 */
const fake = (name: string) => ({ name }) as unknown as BlasModule;

function io(files: Record<string, BlasModule | Error>, status?: string): NativeIo & { tried: string[] } {
  const tried: string[] = [];
  return {
    tried,
    exists: (p) => p in files,
    load: (p) => {
      tried.push(p);
      const f = files[p];
      if (f instanceof Error) throw f;
      if (!f) throw new Error(`Cannot find module '${p}'`);
      return f;
    },
    sourceStatus: () => status,
  };
}

describe('nativeCandidates', () => {
  it('lists the prebuilt module (prebuildify layout) before the source build, from a checkout and from the package', () => {
    const checkout = nativeCandidates(join('/repo', 'src', 'runtime'), 'linux', 'x64', 'glibc');
    expect(checkout).toEqual([
      { kind: 'prebuilt', path: join('/repo', 'prebuilds', 'linux-x64', 'node.napi.glibc.node') },
      { kind: 'source', path: join('/repo', 'src', 'runtime', 'blas', 'build', 'Release', 'vmm_blas.node') },
    ]);
    const pkg = nativeCandidates(join('/app', 'node_modules', 'vmm', 'dist', 'src', 'runtime'), 'darwin', 'arm64');
    expect(pkg.map((c) => c.path)).toEqual([
      join('/app', 'node_modules', 'vmm', 'prebuilds', 'darwin-arm64', 'node.napi.node'),
      join('/app', 'node_modules', 'vmm', 'src', 'runtime', 'blas', 'build', 'Release', 'vmm_blas.node'),
    ]);
    expect(platformTag('linux', 'x64', 'glibc')).toBe('linux-x64');
    expect(platformTag('linux', 'x64', 'musl')).toBe('linux-x64 (musl)');
  });
});

describe('resolveNative: prebuilt > source > wasm', () => {
  const [pre, src] = nativeCandidates(join('/repo', 'src', 'runtime'), 'linux', 'x64', 'glibc');
  const cands = [pre!, src!];

  it('takes the prebuilt module when both exist, without loading the source build', () => {
    const files = io({ [pre!.path]: fake('pre'), [src!.path]: fake('src') });
    const r = resolveNative(cands, 'linux-x64', files);
    expect(r).toMatchObject({ kind: 'prebuilt', path: pre!.path, note: 'OpenBLAS module prebuilt for linux-x64' });
    expect(r.module).toEqual(fake('pre'));
    expect(files.tried).toEqual([pre!.path]);
  });

  it('falls back to the source build when there is no prebuilt module, or it does not load, and says so', () => {
    expect(resolveNative(cands, 'darwin-arm64', io({ [src!.path]: fake('src') }))).toMatchObject({
      kind: 'source',
      note: 'OpenBLAS module built from source: no prebuilt for darwin-arm64',
    });
    const broken = io({ [pre!.path]: new Error("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.14' not found\nmore"), [src!.path]: fake('src') });
    const r = resolveNative(cands, 'linux-x64', broken);
    expect(r).toMatchObject({ kind: 'source', note: "OpenBLAS module built from source: prebuilt for linux-x64 failed to load: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.14' not found" });
    expect(broken.tried).toEqual([pre!.path, src!.path]);
  });

  it('VMM_BLAS=source skips the prebuilt module; VMM_BLAS=0 loads nothing', () => {
    const files = io({ [pre!.path]: fake('pre'), [src!.path]: fake('src') });
    expect(resolveNative(cands, 'linux-x64', files, 'source')).toMatchObject({ kind: 'source', note: 'OpenBLAS module built from source: prebuilt skipped by VMM_BLAS=source' });
    expect(files.tried).toEqual([src!.path]);
    const off = io({ [pre!.path]: fake('pre') });
    expect(resolveNative(cands, 'linux-x64', off, '0')).toEqual({ why: 'OpenBLAS module turned off by VMM_BLAS=0' });
    expect(off.tried).toEqual([]);
  });

  it('neither: wasm products, with why not each (the install script left the reason for the source build)', () => {
    expect(resolveNative(cands, 'darwin-arm64', io({}, 'no OpenBLAS to build against (no cblas.h)'))).toEqual({
      why: 'no OpenBLAS module: no prebuilt for darwin-arm64, and not built from source: no OpenBLAS to build against (no cblas.h)',
    });
    expect(resolveNative(cands, 'linux-x64', io({ [src!.path]: new Error('libopenblas.so.0: cannot open shared object file') }))).toEqual({
      why: 'no OpenBLAS module: no prebuilt for linux-x64, and source build failed to load: libopenblas.so.0: cannot open shared object file',
    });
    expect(resolveNative(cands, 'linux-x64', io({})).module).toBeUndefined();
  });
});
