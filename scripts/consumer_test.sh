#!/usr/bin/env bash
# The package as a user installs it: `npm pack` (which builds dist/ through prepack), a new
# project that installs the tarball, then the README's "Library use" script
# (examples/library.mjs) run from plain Node and, compiled by tsc with the settings of
# `tsc --init`, from TypeScript. Run by .ci/run; needs the npm registry or a warm npm cache.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "consumer: packed $tarball"
mkdir "$work/app"
cd "$work/app"
npm init -y > /dev/null
npm pkg set type=module
npm install --no-audit --no-fund --prefer-offline "$work/$tarball" typescript@5.9 > /dev/null
test ! -e node_modules/vmm/src/cli/main.ts # the built package, not the sources
test -e node_modules/vmm/dist/src/index.d.ts
echo "consumer: plain Node"
cp "$root/examples/library.mjs" demo.mjs
node demo.mjs
echo "consumer: TypeScript (tsc --init defaults)"
npx tsc --init > /dev/null
cp "$root/examples/library.mjs" demo.ts
npx tsc
node demo.js
echo "consumer: the vmm command"
npx vmm check node_modules/vmm/models/vma_mnist.vmm
echo "consumer: ok"
