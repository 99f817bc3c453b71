#!/usr/bin/env bash
# The convolutional VMA model on a GPU: vmm's webgpu backend beside its PyTorch twin on CUDA.
#
#   bench/gpu.sh pack            here (Node, npm install done): builds .gpu/, a self-contained kit
#   bench/gpu.sh slim | unslim   sets the shipped weights (pretrained/) aside for a device run and
#                                back: the working tree travels too, and with them it is over 64 MiB
#   bench/gpu.sh run [options]   on the GPU machine (no Node, no registry needed): unpacks .gpu/,
#                                installs a Vulkan loader if missing, then times
#                                  vmm --backend webgpu        at each batch size (bench/gpu_bench.ts)
#                                  PyTorch on CUDA             (bench/reference/bench_vma_conv.py --device cuda)
#                                  PyTorch on 2 CPU threads    (the "20x of 2 CPU cores" comparison)
#                                and prints a table of steps/s and ratios; files go to $OUT if set,
#                                else .gpu/results/.
#
# .gpu/ holds (each compressed with xz; `pack` prints the sizes and checks the total, working tree
# included, against the 64 MiB a device machine receives):
#   node.xz            this machine's Node binary (process.execPath)
#   gpu_bench.mjs.xz   bench/gpu_bench.ts bundled with esbuild (tfjs, the compiler, the runtime;
#                      tfjs's gradients registered by the bundle itself)
#   webgpu/            the `webgpu` package's index.js and package.json, and dawn.node.xz (linux-x64)
#   libvulkan1_*.deb   the Vulkan loader (apt-get download), installed only where none is found
#   libstdc++.so.6.xz  used only where the system's is older than dawn.node needs (GLIBCXX_3.4.30)
# .gpu/ is listed in .gitignore; a device run names it in `carry`.
#
# run options: --budget 540 (seconds for all stages)  --batches 32,256  --M 32  --steps 20  --warmup 3  --cpu-batches 32,256  --cpu-steps 5
#   --no-cpu (skip PyTorch on CPU)  --cpu-ok (accept a software WebGPU adapter and no CUDA: the
#   end-to-end test on a machine without a GPU)  --local-loader (install the packed Vulkan loader
#   into .gpu/run/ with LD_LIBRARY_PATH even where one exists: tests that path)
#   PYTHON=python3 picks the interpreter with torch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACK="$ROOT/.gpu"
LIMIT_MIB=64

die() { echo "bench/gpu.sh: $*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size() { stat -c %s "$1"; }
# Where ldconfig finds a library (empty if nowhere); reads all of ldconfig's output (pipefail).
ldpath() { ldconfig -p | awk -v n="$1" '$1 == n && /x86-64/ && !f { print $NF; f = 1 }'; }
# xz, or Python's lzma where xz is not installed (the device machine has Python).
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi; }

pack() {
  command -v node >/dev/null || die "pack needs node"
  cd "$ROOT"
  [ -d node_modules/esbuild ] || die "pack needs node_modules (npm ci)"
  local dawn=node_modules/webgpu/dist/linux-x64/dawn.node
  [ -f "$dawn" ] || die "no $dawn (the optional dependency webgpu is not installed)"
  # The compressed Node binary is kept from an earlier pack of the same binary (xz -9 of 99 MB
  # takes minutes on two cores); everything else is made afresh.
  local nodebin stamp keep=""
  nodebin="$(node -p process.execPath)"
  stamp="$nodebin $(size "$nodebin") $(node -v)"
  if [ -f "$PACK/node.xz" ] && [ "$(cat "$PACK/node.stamp" 2>/dev/null)" = "$stamp" ]; then
    keep="$(mktemp)" && mv "$PACK/node.xz" "$keep"
  fi
  rm -rf "$PACK"
  mkdir -p "$PACK/webgpu"
  [ -n "$keep" ] && mv "$keep" "$PACK/node.xz"
  echo "bundling bench/gpu_bench.ts"
  # The entry registers tfjs's gradients first (src/runtime/gradients.ts then finds them and never
  # needs esbuild at run time); `webgpu` stays outside (a native addon, unpacked beside the bundle).
  # A require shim: some CommonJS dependencies require node's built-ins.
  node -e '
    require("esbuild").buildSync({
      stdin: { contents: "import \"@tensorflow/tfjs-core/dist/register_all_gradients.js\";\nimport \"./bench/gpu_bench.ts\";\n", resolveDir: process.cwd(), sourcefile: "gpu_entry.ts", loader: "ts" },
      bundle: true, format: "esm", platform: "node", target: "node20", outfile: process.argv[1],
      external: ["webgpu", "esbuild", "@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"],
      banner: { js: "import { createRequire as __vmmCreateRequire } from \"node:module\"; const require = __vmmCreateRequire(import.meta.url);" },
      logLevel: "error",
    });' "$PACK/gpu_bench.mjs"
  echo "compressing node ($nodebin, $(node -v)), dawn.node, the bundle (xz -9, minutes)"
  [ -f "$PACK/node.xz" ] || xz -9 -T2 -c "$nodebin" >"$PACK/node.xz"
  echo "$stamp" >"$PACK/node.stamp"
  xz -9 -T2 -c "$dawn" >"$PACK/webgpu/dawn.node.xz"
  xz -9 "$PACK/gpu_bench.mjs"
  cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$PACK/webgpu/"
  local stdcxx
  stdcxx="$(ldpath libstdc++.so.6)"
  [ -n "$stdcxx" ] && xz -9 -c "$(readlink -f "$stdcxx")" >"$PACK/libstdc++.so.6.xz"
  echo "downloading the Vulkan loader (apt-get download libvulkan1, amd64)"
  (cd "$PACK" && apt-get download -oAPT::Architecture=amd64 -oAPT::Sandbox::User=root libvulkan1 >/dev/null) || die "apt-get download libvulkan1 failed"
  cp bench/gpu.sh "$PACK/gpu.sh.packed" # which script made the kit
  echo "packed: $PACK"
  local total=0 f
  while IFS= read -r f; do
    printf '  %-40s %s\n' "${f#"$PACK"/}" "$(mib "$(size "$f")")"
    total=$((total + $(size "$f")))
  done < <(find "$PACK" -type f | sort)
  local tree
  # Files that exist: a tracked file set aside (slim) is listed by git but does not travel.
  tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | { xargs -0 stat -c %s 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }')
  echo "  .gpu/ total: $(mib "$total"); working tree (tracked + untracked, not ignored): $(mib "$tree"); together $(mib $((total + tree))) of $LIMIT_MIB MiB"
  [ $((total + tree)) -le $((LIMIT_MIB * 1048576)) ] || die "over $LIMIT_MIB MiB: a device run could not carry it ($( [ -d "$ROOT/$ASIDE" ] && echo "bench/gpu.sh slim sets $ASIDE/ aside" || echo "set more aside"))"
}

run() {
  local batches=32,256 M=32 steps=20 warmup=3 cpu_batches=32,256 cpu_steps=5 cpu=1 cpu_ok=0 local_loader=0 budget=540
  while [ $# -gt 0 ]; do
    case "$1" in
      --budget) budget="$2"; shift 2 ;;
      --batches) batches="$2"; shift 2 ;;
      --M) M="$2"; shift 2 ;;
      --steps) steps="$2"; shift 2 ;;
      --warmup) warmup="$2"; shift 2 ;;
      --cpu-batches) cpu_batches="$2"; shift 2 ;;
      --cpu-steps) cpu_steps="$2"; shift 2 ;;
      --no-cpu) cpu=0; shift ;;
      --cpu-ok) cpu_ok=1; shift ;;
      --local-loader) local_loader=1; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -f "$PACK/node.xz" ] || die "no $PACK/node.xz: run \`bench/gpu.sh pack\` first and carry .gpu"
  # A device command may run 10 minutes: each stage's timeout is its cap or what is left of the
  # budget, and a stage with under 20 s left is skipped, so the table is always printed.
  local deadline=$(($(date +%s) + budget))
  tmo() { local cap=$1 left=$((deadline - $(date +%s))); [ "$left" -lt "$cap" ] && cap=$left; echo "$cap"; }
  local work="$PACK/run" res="${OUT:-$PACK/results}"
  [ -n "${OUT:-}" ] && res="$OUT/gpu_bench"
  mkdir -p "$work/node_modules/webgpu/dist/linux-x64" "$res"
  local log="$res/run.log"
  : >"$log"
  say() { echo "$*" | tee -a "$log"; }
  say "== bench/gpu.sh run $(date -u +%FT%TZ) on $(uname -n): $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log" || true

  # 1. Unpack.
  unxz_to "$PACK/node.xz" "$work/node" && chmod +x "$work/node"
  unxz_to "$PACK/gpu_bench.mjs.xz" "$work/gpu_bench.mjs"
  unxz_to "$PACK/webgpu/dawn.node.xz" "$work/node_modules/webgpu/dist/linux-x64/dawn.node"
  cp "$PACK/webgpu/index.js" "$PACK/webgpu/package.json" "$work/node_modules/webgpu/"
  local node="$work/node" ld=""
  say "node: $("$node" -v)"

  # 2. libstdc++: dawn.node wants GLIBCXX_3.4.30 (GCC 12); an older system gets the packed one.
  local sys_cxx
  sys_cxx="$(ldpath libstdc++.so.6)"
  if [ -z "$sys_cxx" ] || ! grep -q GLIBCXX_3.4.30 "$(readlink -f "$sys_cxx")"; then
    mkdir -p "$work/lib" && unxz_to "$PACK/libstdc++.so.6.xz" "$work/lib/libstdc++.so.6"
    ld="$work/lib"
    say "libstdc++: the system's lacks GLIBCXX_3.4.30; using the packed one"
  fi

  # 3. The Vulkan loader, from the packed .deb where none is installed.
  local deb
  deb="$(ls "$PACK"/libvulkan1_*.deb | head -1)"
  if [ "$local_loader" = 1 ] || [ -z "$(ldpath libvulkan.so.1)" ]; then
    if [ "$local_loader" = 0 ] && [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
      dpkg -x "$deb" / && ldconfig
      say "vulkan loader: installed $(basename "$deb") into /"
    else
      mkdir -p "$work/vk"
      if command -v dpkg >/dev/null; then dpkg -x "$deb" "$work/vk"; else (cd "$work/vk" && ar x "$deb" && tar xf data.tar.*); fi
      ld="$work/vk/usr/lib/x86_64-linux-gnu${ld:+:$ld}"
      say "vulkan loader: $(basename "$deb") unpacked into $work/vk (LD_LIBRARY_PATH)"
    fi
  else
    say "vulkan loader: $(ldpath libvulkan.so.1)"
  fi
  # 4. The driver: NVIDIA's container toolkit puts its ICD outside the loader's search path.
  local icds
  icds="$(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d 2>/dev/null | grep json | tr '\n' ' ' || true)"
  if [ -z "${VK_DRIVER_FILES:-}" ] && [[ "$icds" != *nvidia* ]] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    export VK_ICD_FILENAMES="$VK_DRIVER_FILES" # loaders before 1.3.234 read this name
  fi
  say "vulkan drivers: ${icds:-none in the standard folders}${VK_DRIVER_FILES:+; VK_DRIVER_FILES=$VK_DRIVER_FILES}"
  # Only node sees the packed libraries (PyTorch keeps its own environment).
  local nodeenv=(env)
  [ -n "$ld" ] && nodeenv+=("LD_LIBRARY_PATH=$ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

  # 5. vmm on webgpu, one process per batch size (one failure does not lose the others).
  local hw=--require-hardware
  [ "$cpu_ok" = 1 ] && hw=""
  local B
  for B in ${batches//,/ }; do
    [ "$(tmo 200)" -ge 20 ] || { say "-- vmm webgpu B=$B: skipped (budget spent)"; continue; }
    say "-- vmm webgpu B=$B M=$M ($steps steps after $warmup warm-up)"
    if timeout "$(tmo 200)" "${nodeenv[@]}" "$node" "$work/gpu_bench.mjs" --backend webgpu $hw --batches "$B" --M "$M" --steps "$steps" --warmup "$warmup" \
      --model "$ROOT/models/vma_omniglot.vmm" >"$res/vmm_webgpu_B$B.json" 2>"$res/vmm_webgpu_B$B.err"; then
      tail -1 "$res/vmm_webgpu_B$B.json" | tee -a "$log"
    else
      say "   failed (exit $?): $(grep -v '^Warning: max' "$res/vmm_webgpu_B$B.err" | tail -5)"
      { echo "   devices: $(ls /dev/nvidia* /dev/dri 2>&1 | tr '\n' ' ')"
        echo "   driver file: $(cat "${VK_DRIVER_FILES:-/dev/null}" 2>&1 | tr -d '\n ')"; } | tee -a "$log"
    fi
  done

  # 6. The PyTorch twin: CUDA, then 2 CPU threads.
  local py="${PYTHON:-python3}" twin="$ROOT/bench/reference/bench_vma_conv.py"
  local cuda
  cuda="$("$py" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)"
  if [ "$cuda" = 1 ]; then
    for B in ${batches//,/ }; do
      [ "$(tmo 100)" -ge 20 ] || { say "-- PyTorch CUDA B=$B: skipped (budget spent)"; continue; }
      say "-- PyTorch CUDA B=$B"
      timeout "$(tmo 100)" "$py" "$twin" --device cuda --B "$B" --M "$M" --steps "$steps" --warmup "$warmup" --json >"$res/torch_cuda_B$B.json" 2>"$res/torch_cuda_B$B.err" \
        && tail -1 "$res/torch_cuda_B$B.json" | tee -a "$log" || say "   failed: $(tail -3 "$res/torch_cuda_B$B.err")"
    done
  else
    say "-- PyTorch CUDA: not available here (torch.cuda.is_available() is false or no torch)"
    [ "$cpu_ok" = 1 ] || say "   (no GPU figures from PyTorch: run on the GPU machine)"
  fi
  if [ "$cpu" = 1 ]; then
    local pin=""
    command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && pin="taskset -c 0,1"
    for B in ${cpu_batches//,/ }; do
      [ "$(tmo 90)" -ge 20 ] || { say "-- PyTorch CPU B=$B: skipped (budget spent)"; continue; }
      say "-- PyTorch CPU, 2 threads${pin:+ (taskset -c 0,1)}, B=$B ($cpu_steps steps after 1 warm-up)"
      timeout "$(tmo 90)" $pin "$py" "$twin" --device cpu --torch-threads 2 --B "$B" --M "$M" --steps "$cpu_steps" --warmup 1 --json >"$res/torch_cpu2_B$B.json" 2>"$res/torch_cpu2_B$B.err" \
        && tail -1 "$res/torch_cpu2_B$B.json" | tee -a "$log" || say "   failed: $(tail -3 "$res/torch_cpu2_B$B.err")"
    done
  fi

  # 7. The table.
  "$py" - "$res" "$batches" <<'EOF' | tee "$res/table.md" | tee -a "$log"
import json, os, sys
res, batches = sys.argv[1], [int(b) for b in sys.argv[2].split(",")]
def load(name):
    try:
        with open(os.path.join(res, name)) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except Exception:
        return None
def sps(r, best=False):
    if not r: return None
    if "steps_per_s_best" in r and best: return r["steps_per_s_best"]
    return r["steps_per_s"]
fmt = lambda x: "-" if x is None else ("%.3f" % x if x < 10 else "%.1f" % x)
ratio = lambda a, b: "-" if a is None or b is None else "%.2f" % (a / b)
print("| B | vmm webgpu steps/s (median / best) | PyTorch CUDA steps/s (median / best) | PyTorch CPU 2 threads steps/s | webgpu / CUDA | webgpu / CPU 2 threads |")
print("|---:|---:|---:|---:|---:|---:|")
line = None
for B in batches:
    w, c, p = load("vmm_webgpu_B%d.json" % B), load("torch_cuda_B%d.json" % B), load("torch_cpu2_B%d.json" % B)
    line = line or (w and w.get("backend_line"))
    print("| %d | %s / %s | %s / %s | %s | %s | %s |" % (B, fmt(sps(w)), fmt(sps(w, True)), fmt(sps(c)), fmt(sps(c, True)), fmt(sps(p)), ratio(sps(w), sps(c)), ratio(sps(w), sps(p))))
print()
print("vmm: %s; models/vma_omniglot.vmm (hard, VIMCO, K=4, M=%s + 2 learned entries), random binary data on the device" % (line or "webgpu did not run", (load("vmm_webgpu_B%d.json" % batches[0]) or {}).get("M", "?")))
t = next((r for r in (load("torch_cuda_B%d.json" % b) or load("torch_cpu2_B%d.json" % b) for b in batches) if r), None)
if t: print("PyTorch %s (%s); CUDA device: %s" % (t.get("torch_version"), t.get("python"), t.get("cuda_device") or "-"))
EOF
  say "results: $res"
}

# What a device run does not need and cannot carry: the shipped weights (~47 MiB of the ~56 MiB of
# tracked files, 2026-12-08) would put the working tree and .gpu/ over 64 MiB. `slim` moves them
# out of the tree to a sibling folder (only when they have no uncommitted changes); `unslim` moves
# them back. While set aside git sees them deleted: do not commit between the two.
ASIDE=pretrained
aside_dir() { echo "$(dirname "$ROOT")/.$(basename "$ROOT")-gpu-aside"; }
slim() {
  cd "$ROOT"
  local dir
  dir="$(aside_dir)"
  [ -e "$dir/$ASIDE" ] && die "$ASIDE/ is already set aside in $dir (bench/gpu.sh unslim brings it back)"
  [ -d "$ASIDE" ] || die "no $ASIDE/ here"
  [ -z "$(git status --porcelain -- "$ASIDE")" ] || die "$ASIDE/ has uncommitted changes: commit or stash them first"
  mkdir -p "$dir" && mv "$ASIDE" "$dir/"
  echo "set aside: $ASIDE/ -> $dir/$ASIDE (git sees it deleted until \`bench/gpu.sh unslim\`: do not commit in between)"
}
unslim() {
  cd "$ROOT"
  local dir
  dir="$(aside_dir)"
  [ -d "$dir/$ASIDE" ] || die "nothing set aside in $dir"
  [ -e "$ASIDE" ] && die "$ASIDE/ exists here as well: move one of them by hand"
  mv "$dir/$ASIDE" "$ASIDE" && rmdir "$dir" 2>/dev/null || true
  echo "restored: $ASIDE/"
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) shift; run "$@" ;;
  slim) slim ;;
  unslim) unslim ;;
  *) echo "usage: bench/gpu.sh pack | slim | unslim | run [--batches 32,256 --M 32 --steps 20 --warmup 3 --no-cpu --cpu-ok --local-loader]" >&2; exit 2 ;;
esac
