/**
 * Builds the optional native matrix-product module (src/runtime/blas/vmm_blas.c) against the
 * system's OpenBLAS: `npm run build:blas`, also run after `npm install` / `npm ci`.
 *
 * Optional by design: without a C compiler or OpenBLAS headers (Debian: libopenblas-dev) the
 * build is skipped with one line saying so, and vmm runs its matrix products in wasm instead.
 * This script never fails the install. VMM_BLAS=0 skips it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'runtime', 'blas');
const say = (msg) => process.stdout.write(`vmm: ${msg}\n`);

if (process.env.VMM_BLAS === '0') {
  say('OpenBLAS matrix products: skipped (VMM_BLAS=0)');
  process.exit(0);
}
const cblas = ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h'];
if (!cblas.some((p) => existsSync(p))) {
  say('OpenBLAS matrix products: not built (no cblas.h; on Debian `apt-get install libopenblas-dev`, then `npm run build:blas`); using wasm matrix products');
  process.exit(0);
}
// npm exports its bundled node-gyp to scripts; outside npm, look beside the node binary.
const gyp = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find(
  (p) => p && existsSync(p),
);
if (!gyp) {
  say('OpenBLAS matrix products: not built (node-gyp not found); using wasm matrix products');
  process.exit(0);
}
const r = spawnSync(process.execPath, [gyp, 'rebuild', '--directory', dir], { encoding: 'utf8' });
if (r.status === 0) {
  say('OpenBLAS matrix products: built (src/runtime/blas/build/Release/vmm_blas.node)');
} else {
  const why = `${r.stderr ?? ''}${r.stdout ?? ''}`.split('\n').filter((l) => /error|not found|cannot/i.test(l)).slice(0, 3).join(' | ');
  say(`OpenBLAS matrix products: build failed, using wasm matrix products (${why.slice(0, 400) || `node-gyp exit ${r.status}`})`);
}
