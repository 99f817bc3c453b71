#!/usr/bin/env bash
# The package as a user installs it: `npm pack` (which builds dist/ and the prebuilt OpenBLAS
# module through prepack), a new project that installs the tarball, then the README's "Library
# use" script (examples/library.mjs) run from plain Node and, compiled by tsc with the settings of
# `tsc --init`, from TypeScript. Run by .ci/run; needs the npm registry or a warm npm cache.
#
# Native products from `npm install` alone: where the pack could make the prebuilt module (Linux
# with a static libopenblas.a), the tarball must carry it with OpenBLAS's licence, the install runs
# with VMM_CBLAS=none (as on a machine without OpenBLAS: no source build is possible), and
# `vmm train` must say that the prebuilt module runs the matrix products. VMM_PREBUILD=required
# makes a pack without it an error.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "consumer: packed $tarball ($(du -k "$work/$tarball" | cut -f1) kB)"
platform="$(node -p 'process.platform + "-" + process.arch')"
prebuilt="prebuilds/$platform/node.napi.glibc.node"
tar -tzf "$work/$tarball" > "$work/files" # (not piped into grep -q: pipefail and SIGPIPE)
if grep -qx "package/$prebuilt" "$work/files"; then
  has_prebuilt=1
  grep -qx "package/prebuilds/$platform/OpenBLAS-LICENSE.txt" "$work/files"
  echo "consumer: the tarball carries $prebuilt and OpenBLAS's licence"
else
  has_prebuilt=0
  [ "${VMM_PREBUILD:-}" != required ] || { echo "consumer: no $prebuilt in the tarball" >&2; exit 1; }
  echo "consumer: no prebuilt module for $platform in the tarball (\`npm run build:prebuilt\` says why); checking the rest"
fi
test ! -e prebuilds # postpack removed it from the checkout
mkdir "$work/app"
cd "$work/app"
npm init -y > /dev/null
npm pkg set type=module
# As on a machine without OpenBLAS: the install cannot build the module from source.
VMM_CBLAS=none npm install --no-audit --no-fund --prefer-offline "$work/$tarball" typescript@5.9 > /dev/null
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
echo "consumer: the language server, its analysis worker loaded from dist/"
node "$root/scripts/lsp_smoke.mjs" node_modules/vmm/models/vae.vmm npx vmm
if [ "$has_prebuilt" = 1 ]; then
  echo "consumer: native products from the prebuilt module alone"
  test ! -e node_modules/vmm/src/runtime/blas/build/Release/vmm_blas.node # nothing was built from source
  if command -v readelf > /dev/null && readelf -d "node_modules/vmm/$prebuilt" | grep -qi 'NEEDED.*openblas'; then
    echo "consumer: $prebuilt needs libopenblas at run time" >&2 # it must be linked in statically
    exit 1
  fi
  line="$(npx vmm train node_modules/vmm/models/vma_mnist.vmm --steps 2 --valid-every 100 --out "$work/run" --quiet 2>&1 | grep '^backend:')"
  echo "$line"
  echo "$line" | grep -Eq "matrix products: OpenBLAS( [A-Za-z0-9]+)?, [0-9]+ threads?( \(vmm's pool\))?\); OpenBLAS module prebuilt for $platform;"
fi
echo "consumer: ok"
