import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installedVersion, TFJS_VERSION, tfjsVersionProblem } from '../../src/runtime/tfjs_version.ts';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as Record<string, Record<string, string>>;

describe('the pinned tfjs version', () => {
  it('package.json pins every @tensorflow package to exactly TFJS_VERSION, and that is what is installed', () => {
    const specs = Object.entries({ ...pkg['dependencies'], ...pkg['optionalDependencies'] }).filter(([n]) => n.startsWith('@tensorflow/'));
    expect(specs.length).toBeGreaterThanOrEqual(3);
    for (const [, spec] of specs) expect(spec).toBe(TFJS_VERSION);
    expect(installedVersion('@tensorflow/tfjs-core')).toBe(TFJS_VERSION);
    expect(installedVersion('@tensorflow/tfjs-backend-wasm')).toBe(TFJS_VERSION);
    expect(tfjsVersionProblem()).toBeUndefined();
  });

  it('another installed version turns the kernel patches off with one line naming it', () => {
    const msg = tfjsVersionProblem({ '@tensorflow/tfjs-core': '4.23.1', '@tensorflow/tfjs-backend-wasm': TFJS_VERSION });
    expect(msg).toBe(`@tensorflow/tfjs-core 4.23.1 installed, vmm is built for tfjs ${TFJS_VERSION}: native matrix products and kernel patches are off (plain tfjs kernels)`);
    expect(msg).not.toContain('\n');
    expect(tfjsVersionProblem({ '@tensorflow/tfjs-core': undefined })).toBeUndefined();
  });

  it('the library is built to dist/ with declarations; tsx and esbuild are development tools only', () => {
    expect(pkg['exports']).toEqual({ '.': { types: './dist/src/index.d.ts', import: './dist/src/index.js' }, './package.json': './package.json' });
    // prepack also makes the prebuilt OpenBLAS module (scripts/build_blas.mjs), which postpack removes again.
    expect(pkg['scripts']!['prepack']).toBe('node scripts/build.mjs && node scripts/build_blas.mjs --prebuild');
    expect(pkg['scripts']!['postpack']).toBe('node scripts/build_blas.mjs --clean');
    expect(pkg['files']).toContain('prebuilds/');
    expect(Object.keys(pkg['dependencies']!)).not.toContain('tsx');
    expect(Object.keys(pkg['dependencies']!)).not.toContain('esbuild');
    expect(pkg['files']).toContain('LICENSE');
  });
});
