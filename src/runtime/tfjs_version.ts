/**
 * The exact tfjs version vmm is built against. The native matrix products (blas.ts) and the wasm
 * kernel patch (backend.ts) replace tfjs kernels and read their internal argument layouts, and the
 * build ships tfjs-core's gradient registrations bundled for this version (scripts/build.mjs), so
 * package.json pins it exactly. If another version is installed anyway (an override, a hoisted
 * copy), the kernels are left as tfjs ships them and one line says so.
 */
import { createRequire } from 'node:module';

export const TFJS_VERSION = '4.22.0';

/** The installed version of a tfjs package, or undefined when it is not installed. */
export function installedVersion(pkg: string): string | undefined {
  try {
    return (createRequire(import.meta.url)(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** Why the kernel patches must stay off (a version other than the pinned one), or undefined. */
export function tfjsVersionProblem(versions: Record<string, string | undefined> = {
  '@tensorflow/tfjs-core': installedVersion('@tensorflow/tfjs-core'),
  '@tensorflow/tfjs-backend-wasm': installedVersion('@tensorflow/tfjs-backend-wasm'),
}): string | undefined {
  const off = Object.entries(versions).filter(([, v]) => v !== undefined && v !== TFJS_VERSION);
  if (off.length === 0) return undefined;
  return `${off.map(([p, v]) => `${p} ${v}`).join(', ')} installed, vmm is built for tfjs ${TFJS_VERSION}: native matrix products and kernel patches are off (plain tfjs kernels)`;
}
