/**
 * `npm run build` (also run by `npm pack` / `npm publish` through `prepack`): the library as
 * JavaScript with declarations in dist/, so that `import { compile } from 'vmm'` works from plain
 * Node and from TypeScript without tsx or esbuild at run time.
 *
 *   1. tsc -p tsconfig.build.json (`.ts` specifiers rewritten to `.js`);
 *   2. the generated CST types (grammar/cst.d.ts) copied beside the parser's declarations;
 *   3. tfjs-core's gradient registrations bundled once with esbuild next to
 *      src/runtime/gradients.ts's output (see that file), for the pinned tfjs-core version.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
mkdirSync(join(dist, 'grammar'), { recursive: true });
copyFileSync(join(root, 'grammar', 'cst.d.ts'), join(dist, 'grammar', 'cst.d.ts'));
// The fixed Python files of `vmm export pytorch`, read beside the exporter's module.
mkdirSync(join(dist, 'src', 'export', 'torch', 'runtime'), { recursive: true });
for (const f of ['vmm_runtime.py', 'train.py']) copyFileSync(join(root, 'src', 'export', 'torch', 'runtime', f), join(dist, 'src', 'export', 'torch', 'runtime', f));

const entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
const { version } = JSON.parse(readFileSync(join(dirname(dirname(entry)), 'package.json'), 'utf8'));
const { buildSync } = await import('esbuild');
buildSync({
  entryPoints: [entry],
  bundle: true,
  format: 'esm',
  platform: 'node',
  outfile: join(dist, 'src', 'runtime', `register_all_gradients-${version}.mjs`),
  logLevel: 'error',
});
console.log(`vmm: built ${dist} (tfjs-core ${version} gradients bundled)`);
