#!/usr/bin/env node
// The `vmm` command. In a checkout the compiler is TypeScript run through tsx's loader (no build
// step); an installed package runs its built JavaScript (dist/, `npm run build`).
import { existsSync } from 'node:fs';

const checkout = new URL('../src/cli/main.ts', import.meta.url);
let main;
if (existsSync(checkout)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(checkout.href));
} else {
  ({ main } = await import(new URL('../dist/src/cli/main.js', import.meta.url).href));
}
process.exitCode = await main(process.argv.slice(2));
