/**
 * The optional native matrix-product module (src/runtime/blas/vmm_blas.c), in two builds:
 *
 *   node scripts/build_blas.mjs             `npm run build:blas`, also run after `npm install` /
 *       `npm ci`: when the package carries a prebuilt module for this platform that loads, nothing
 *       to do; else builds src/runtime/blas/build/Release/vmm_blas.node against the system's
 *       OpenBLAS (the source build). Optional by design: without a C compiler or OpenBLAS headers
 *       (Debian: libopenblas-dev) it is skipped with one line saying so, and vmm runs its matrix
 *       products in wasm. Never fails the install. VMM_BLAS=0 skips it; VMM_BLAS=source builds
 *       even when a prebuilt module is there; VMM_CBLAS=none acts as if OpenBLAS were not installed.
 *
 *   node scripts/build_blas.mjs --prebuild  run by `npm pack` (prepack): the prebuilt module,
 *       prebuilds/<platform>-<arch>/node.napi.<libc>.node (prebuildify's layout), with OpenBLAS
 *       linked in statically (no runtime dependency on libopenblas.so), and OpenBLAS's licence
 *       beside it. Needs the static library (Debian: libopenblas-dev's libopenblas.a;
 *       VMM_OPENBLAS_A=/path/to/libopenblas.a to choose one). Without it the package is packed
 *       without a prebuilt module, saying so, unless VMM_PREBUILD=required (for a release), which
 *       makes that an error. `--clean` removes prebuilds/ (postpack: the checkout keeps no copy
 *       that would shadow its own source build).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'src', 'runtime', 'blas');
const say = (msg) => process.stdout.write(`vmm: ${msg}\n`);
const arg = process.argv[2];

/** "glibc" or "musl" on Linux (Node's report says which C library it runs on); "" elsewhere. */
function libc() {
  if (process.platform !== 'linux') return '';
  try {
    return process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
  } catch {
    return 'glibc';
  }
}
const platform = `${process.platform}-${process.arch}`;
const prebuiltDir = join(root, 'prebuilds', platform);
const prebuiltFile = join(prebuiltDir, `node.napi${libc() ? `.${libc()}` : ''}.node`);

// npm exports its bundled node-gyp to scripts; outside npm, look beside the node binary.
const gyp = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find(
  (p) => p && existsSync(p),
);

// VMM_CBLAS=none: act as on a machine without OpenBLAS (no headers, no static library), for
// scripts/consumer_test.sh, which checks that the prebuilt module alone gives native products.
const noSystemBlas = process.env.VMM_CBLAS === 'none';
// The headers of the running Node where it ships them (Linux packages, the official tarballs), so
// that node-gyp need not download them: offline builds work outside npm too.
const prefix = join(dirname(process.execPath), '..');
const gypArgs = (d) => ['rebuild', '--directory', d, ...(!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [])];
const cblas = noSystemBlas ? [] : ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h'];

/** The first lines of a failed build that say what went wrong. */
const failure = (r) =>
  `${r.stderr ?? ''}${r.stdout ?? ''}`
    .split('\n')
    .filter((l) => /error|not found|cannot|undefined reference/i.test(l))
    .slice(0, 3)
    .join(' | ')
    .slice(0, 400) || `exit ${r.status}`;

/** Whether the module at `path` loads in a fresh process and computes a 2x2 product; else why not. */
function probe(path) {
  const code = `const m = require(${JSON.stringify(path)}); const o = new Float32Array(4);
m.gemm(new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), o, 1, 2, 2, 2, false, false, null, false);
if (o.join() !== '19,22,43,50') throw new Error('wrong product ' + o.join());
process.stdout.write(String(m.threads()));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  return r.status === 0 ? { ok: true, threads: Number(r.stdout) } : { ok: false, why: (r.stderr.split('\n').find((l) => /Error/.test(l)) ?? `exit ${r.status}`).slice(0, 300) };
}

if (arg === '--clean') {
  rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
  process.exit(0);
}
if (arg === '--prebuild') {
  const required = process.env.VMM_PREBUILD === 'required';
  const fail = (why) => {
    say(`prebuilt OpenBLAS module for ${platform}: not built (${why}); the package will build it from source or use wasm`);
    process.exit(required ? 1 : 0);
  };
  rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
  if (process.env.VMM_PREBUILD === '0') fail('VMM_PREBUILD=0');
  if (process.platform !== 'linux') fail('only Linux prebuilds are made (static OpenBLAS from the distribution)');
  const triplet = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' }[process.arch] ?? '';
  // The pthread build first: OpenBLAS's own threads, no OpenMP runtime to ship.
  const archives = (noSystemBlas ? [] : [
    process.env.VMM_OPENBLAS_A,
    `/usr/lib/${triplet}/openblas-pthread/libopenblas.a`,
    `/usr/lib/${triplet}/libopenblas.a`,
    '/usr/lib64/libopenblas.a',
    '/usr/lib/libopenblas.a',
    '/usr/local/lib/libopenblas.a',
  ]).filter((p) => p && existsSync(p));
  if (archives.length === 0) fail('no static libopenblas.a; on Debian `apt-get install libopenblas-dev`, or set VMM_OPENBLAS_A');
  if (!cblas.some((p) => existsSync(p))) fail('no cblas.h');
  if (!gyp) fail('node-gyp not found');
  const archive = archives[0];
  // Built in a copy, so the checkout's own source build (src/runtime/blas/build) stays as it is.
  const work = mkdtempSync(join(tmpdir(), 'vmm-prebuild-'));
  try {
    for (const f of ['vmm_blas.c', 'glibc_compat.c', 'binding.gyp']) copyFileSync(join(dir, f), join(work, f));
    const r = spawnSync(process.execPath, [gyp, ...gypArgs(work)], { encoding: 'utf8', env: { ...process.env, VMM_BLAS_STATIC: archive } });
    if (r.status !== 0) fail(`build failed: ${failure(r)}`);
    const built = join(work, 'build', 'Release', 'vmm_blas.node');
    // No libopenblas.so, libgfortran or libgomp at run time: only the C library.
    const elf = spawnSync('readelf', ['-d', built], { encoding: 'utf8' });
    if (elf.status === 0) {
      const needed = [...elf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      const extra = needed.filter((n) => !/^(libc|libm|libpthread|libdl|ld-linux[-\w]*)\.so/.test(n));
      if (extra.length) fail(`${archive} leaves run-time dependencies: ${extra.join(', ')}`);
    }
    // Nothing bound to a glibc newer than RHEL 8's 2.28 (glibc_compat.c says how the pthread
    // calls are kept old): a symbol from 2.34 would make the module fail to load on Ubuntu 20.04.
    const syms = spawnSync('objdump', ['-T', built], { encoding: 'utf8' });
    if (syms.status === 0) {
      const tooNew = [...syms.stdout.matchAll(/\(GLIBC_2\.(\d+)(?:\.\d+)?\)\s+(\S+)/g)].filter((m) => Number(m[1]) > 28).map((m) => `${m[2]}@GLIBC_2.${m[1]}`);
      if (tooNew.length) fail(`the static build needs a glibc newer than 2.28: ${[...new Set(tooNew)].join(', ')} (wrap them in glibc_compat.c and binding.gyp)`);
    }
    const p = probe(built);
    if (!p.ok) fail(`the static build does not load: ${p.why}`);
    mkdirSync(prebuiltDir, { recursive: true });
    copyFileSync(built, prebuiltFile);
    // OpenBLAS is BSD-3-Clause (parts BSD-2-Clause): its notice goes with the binary.
    const copyright = ['/usr/share/doc/libopenblas0-pthread/copyright', '/usr/share/doc/libopenblas-dev/copyright', '/usr/share/doc/libopenblas0/copyright'].find((f) => existsSync(f));
    const version = /libopenblas\w*-r(\d+\.\d+\.\d+)/.exec(archive)?.[1] ?? (spawnSync('realpath', [archive], { encoding: 'utf8' }).stdout.match(/r(\d+\.\d+\.\d+)/)?.[1] ?? 'unknown version');
    const notice =
      `${relative(root, prebuiltFile)} contains OpenBLAS ${version} (https://github.com/OpenMathLib/OpenBLAS), linked in\n` +
      `statically from ${archive}. OpenBLAS is distributed under the BSD 3-Clause licence, some files\n` +
      `under the BSD 2-Clause licence; its copyright notices and licence terms follow.\n\n` +
      (copyright ? readFileSync(copyright, 'utf8') : 'Copyright (c) 2011-2022, The OpenBLAS Project. BSD-3-Clause: see https://github.com/OpenMathLib/OpenBLAS/blob/develop/LICENSE\n');
    writeFileSync(join(prebuiltDir, 'OpenBLAS-LICENSE.txt'), notice);
    const mb = (readFileSync(prebuiltFile).length / 2 ** 20).toFixed(1);
    say(`prebuilt OpenBLAS module: ${relative(root, prebuiltFile)} (${mb} MB, OpenBLAS ${version} static, ${p.threads} threads here)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  process.exit(0);
}

// The source build (postinstall / npm run build:blas). When it is not made, one line in
// build/vmm_blas.status says why, for the backend line (src/runtime/blas.ts); a build removes it.
const status = (why) => {
  mkdirSync(join(dir, 'build'), { recursive: true });
  writeFileSync(join(dir, 'build', 'vmm_blas.status'), `${why}\n`);
};
if (process.env.VMM_BLAS === '0') {
  status('skipped at install: VMM_BLAS=0');
  say('OpenBLAS matrix products: skipped (VMM_BLAS=0)');
  process.exit(0);
}
if (process.env.VMM_BLAS !== 'source' && existsSync(prebuiltFile)) {
  const p = probe(prebuiltFile);
  if (p.ok) {
    say(`OpenBLAS matrix products: prebuilt for ${platform} (${relative(root, prebuiltFile)}); nothing to build`);
    process.exit(0);
  }
  say(`OpenBLAS matrix products: the prebuilt module for ${platform} does not load here (${p.why}); building from source`);
}
const noPrebuilt = existsSync(prebuiltFile) || process.env.VMM_BLAS === 'source' ? '' : `no prebuilt module for ${platform}; `;
if (!cblas.some((p) => existsSync(p))) {
  status('no OpenBLAS to build against (no cblas.h; on Debian apt-get install libopenblas-dev, then npm run build:blas)');
  say(`OpenBLAS matrix products: not built (${noPrebuilt}no cblas.h: on Debian \`apt-get install libopenblas-dev\`, then \`npm run build:blas\`); using wasm matrix products`);
  process.exit(0);
}
if (!gyp) {
  status('node-gyp not found');
  say(`OpenBLAS matrix products: not built (${noPrebuilt}node-gyp not found); using wasm matrix products`);
  process.exit(0);
}
const r = spawnSync(process.execPath, [gyp, ...gypArgs(dir)], { encoding: 'utf8', env: { ...process.env, VMM_BLAS_STATIC: '' } });
if (r.status === 0) {
  say('OpenBLAS matrix products: built from source (src/runtime/blas/build/Release/vmm_blas.node)');
} else {
  status(`build failed: ${failure(r)}`);
  say(`OpenBLAS matrix products: build failed, using wasm matrix products (${failure(r)})`);
}
