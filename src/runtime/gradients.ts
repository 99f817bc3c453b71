/**
 * Registers tfjs-core's gradient functions. `@tensorflow/tfjs-core` alone registers none (the
 * union package `@tensorflow/tfjs` does it with a side-effect import), and that module is an ESM
 * build with extensionless relative imports that Node's resolver refuses. So it is bundled once
 * with esbuild into `node_modules/.cache/vmm/` and imported from there. Gradient and kernel
 * registries and the engine live on tfjs's global namespace, so the bundled registrations reach
 * the same registry the installed tfjs-core reads.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

let done: Promise<void> | undefined;

export function ensureGradients(): Promise<void> {
  done ??= register();
  return done;
}

async function register(): Promise<void> {
  if (tf.getGradient('Sum') !== undefined) return; // already registered (e.g. by @tensorflow/tfjs)
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  const coreRoot = dirname(dirname(entry));
  const version = (require('@tensorflow/tfjs-core/package.json') as { version: string }).version;
  const cacheDir = join(coreRoot, '..', '..', '.cache', 'vmm');
  // The built package (npm run build) ships the bundle beside this module; a checkout makes it on first use.
  const shipped = join(dirname(fileURLToPath(import.meta.url)), `register_all_gradients-${version}.mjs`);
  const out = existsSync(shipped) ? shipped : join(cacheDir, `register_all_gradients-${version}.mjs`);
  if (!existsSync(out)) {
    const { buildSync } = (await import('esbuild')) as typeof import('esbuild');
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    buildSync({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', outfile: tmp, logLevel: 'error' });
    renameSync(tmp, out);
  }
  await import(pathToFileURL(out).href);
  if (tf.getGradient('Sum') === undefined) throw new Error('tfjs gradients could not be registered');
}
