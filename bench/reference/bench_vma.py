#!/usr/bin/env python3
"""PyTorch reference implementation of the fixed benchmark model (shared/docs/bench-model.md).

Variational memory addressing (Bornschein, Mnih, Zoran, Rezende, NeurIPS 2017,
arXiv:1709.07116), written by hand in plain PyTorch, to time the same work as `vmm` does.

Memory layout: PER-EPISODE memory, `mem [B, M, D]` -- each of the B examples (episodes) in a
batch has its own M entries.  (The addressing-only mode instead uses ONE memory `[N, D]` shared
by all queries; see `--addressing-only`.)

Networks (ReLU between layers, none after the last), D = 784, Z = 32:
  h     : D -> 256 -> 128              addressing embedding, applied to x and to every entry
  g     : D -> 400 -> 400 -> 128       generation-side memory encoder
  prior : 128 -> 2Z                    p(z | m_a)      = N(mu, softplus(s) + 1e-4)
  enc   : [h(x), g(m_a)] 256 -> 256 -> 2Z   q(z | x, m_a)
  dec   : [z, g(m_a)] 160 -> 256 -> 400 -> D  Bernoulli logits of p(x | z, m_a)
  p(a) uniform over M;  q(a | x, mem) = softmax_i(h(x) . h(m_i)).

Hard variant: K samples (a_k, z_k) per example, g applied ONLY to the K gathered entries,
  l_k = log p(a_k) + log p(z_k|m_a) + log p(x|z_k,m_a) - log q(a_k|x) - log q(z_k|x,m_a),
  L = logsumexp_k l_k - log K; z reparameterized; a by VIMCO with the geometric
  leave-one-out baseline (Mnih & Rezende 2016, arXiv:1602.06725):
  surrogate = L + sum_k stop(L - L^{-k}) * log q(a_k),
  L^{-k} = L with l_k replaced by the mean of the other l_j.
Soft variant: r = sum_i q(i|x) g(m_i) (g on all M entries), prior/enc/dec on r,
  K samples of z, IWAE bound L = logsumexp_k l_k - log K (Burda et al. 2015).

One training step = zero_grad + forward + backward + one Adam step (lr 1e-4).

Usage (see bench/README.md):
  bench_vma.py --variant hard --M 128 --json          one JSON line on stdout
  bench_vma.py --sweep                                 both variants, M in 8..2048, table
  bench_vma.py --addressing-only --memory 100000 --queries 32
  bench_vma.py --check                                 correctness checks
  bench_vma.py --which-python                          print the interpreter that has torch

Thread settings are applied BEFORE torch is imported: OPENBLAS_NUM_THREADS (default 2, flag
--openblas-threads) and torch.set_num_threads (default 1, flag --torch-threads).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

D = 784
Z = 32
H_DIM = 128
SWEEP_M = [8, 32, 128, 512, 2048]


# ----------------------------------------------------------------------------------------------
# Argument parsing (before torch is imported: BLAS threads are read when the library loads)
# ----------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=["hard", "soft"], default="hard")
    p.add_argument("--M", type=int, default=8, help="memory entries per episode")
    p.add_argument("--B", type=int, default=32, help="batch size (episodes)")
    p.add_argument("--K", type=int, default=4, help="samples per example")
    p.add_argument("--steps", type=int, default=10, help="timed steps (median is reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object per configuration")
    p.add_argument("--sweep", action="store_true",
                   help="both variants, M in 8,32,128,512,2048; one subprocess per configuration")
    p.add_argument("--sweep-M", type=str, default=",".join(map(str, SWEEP_M)),
                   help="comma-separated M values for --sweep")
    p.add_argument("--sweep-variants", type=str, default="hard,soft")
    p.add_argument("--thread-compare", type=str, default=None, metavar="T1xO1,T2xO2,...",
                   help="time --variant/--M under each setting torch_threads x OPENBLAS threads, "
                        "e.g. 1x2,2x2,2x1,1x1 (interleaved, --repeats times, own process each)")
    p.add_argument("--repeats", type=int, default=1,
                   help="--sweep: run every configuration this many times (separate processes)")
    p.add_argument("--addressing-only", action="store_true",
                   help="time q(a|x) against one large shared memory [N, D]")
    p.add_argument("--memory", type=int, default=10000, help="N for --addressing-only")
    p.add_argument("--queries", type=int, default=32, help="queries per call for --addressing-only")
    p.add_argument("--check", action="store_true", help="run correctness checks and exit")
    p.add_argument("--which-python", action="store_true",
                   help="print the path of the python interpreter that has torch and exit")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch.set_num_threads (intra-op / OpenMP threads); default 1")
    p.add_argument("--openblas-threads", type=int, default=None,
                   help="OPENBLAS_NUM_THREADS; default: the environment's value, else 2")
    p.add_argument("--interop-threads", type=int, default=1,
                   help="torch.set_num_interop_threads; default 1")
    return p.parse_args(argv)


ARGS = parse_args(sys.argv[1:])

if ARGS.openblas_threads is not None:
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.openblas_threads)
else:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
# GOTO/OMP variants of OpenBLAS read these instead; keep them consistent.
os.environ["GOTO_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"]


# ----------------------------------------------------------------------------------------------
# Interpreter discovery: Debian's python3-torch installs for /usr/bin/python3, while a pyenv
# python3 may come first on PATH.  If torch is missing here, re-exec under one that has it.
# ----------------------------------------------------------------------------------------------

def _candidates():
    seen = []
    for c in [os.environ.get("VMM_TORCH_PYTHON"), sys.executable, "/usr/bin/python3",
              shutil.which("python3"), "/usr/local/bin/python3", shutil.which("python")]:
        if c and os.path.exists(c) and c not in seen:
            seen.append(c)
    return seen


def _has_torch(py):
    try:
        r = subprocess.run([py, "-c", "import torch"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        return r.returncode == 0
    except Exception:
        return False


try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    if os.environ.get("VMM_BENCH_REEXEC"):
        sys.exit("bench_vma.py: no python interpreter with torch found "
                 "(apt-get install -y python3-torch; or set VMM_TORCH_PYTHON)")
    for py in _candidates():
        if os.path.realpath(py) != os.path.realpath(sys.executable) and _has_torch(py):
            os.environ["VMM_BENCH_REEXEC"] = "1"
            os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("bench_vma.py: no python interpreter with torch found among %s "
             "(apt-get install -y python3-torch; or set VMM_TORCH_PYTHON)" % _candidates())

torch.set_num_threads(ARGS.torch_threads)
try:
    torch.set_num_interop_threads(ARGS.interop_threads)
except RuntimeError:
    pass


def blas_info():
    """Which BLAS library is actually loaded into this process, and its thread count."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(path)
                if "blas" in base or "lapack" in base:
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    blas = sorted(l for l in libs if "blas" in os.path.basename(l))
    threads = None
    for l in blas:
        try:
            import ctypes
            lib = ctypes.CDLL(l)
            if hasattr(lib, "openblas_get_num_threads"):
                threads = lib.openblas_get_num_threads()
                break
        except OSError:
            pass
    return {"blas_libs": blas, "openblas_get_num_threads": threads}


def settings():
    info = {
        "python": sys.executable,
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "cpu_count": os.cpu_count(),
    }
    info.update(blas_info())
    return info


def peak_rss_mb():
    """Process-wide resident-set high-water mark (ru_maxrss is in KiB on Linux)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

def mlp(*sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


LOG_2PI = math.log(2.0 * math.pi)


def normal_log_prob(z, mu, scale):
    """Diagonal Gaussian log density, summed over the last axis."""
    return (-0.5 * ((z - mu) / scale) ** 2 - torch.log(scale) - 0.5 * LOG_2PI).sum(-1)


def split_gaussian(out):
    mu, s = out.chunk(2, dim=-1)
    return mu, F.softplus(s) + 1e-4


def vimco_signals(l):
    """Geometric leave-one-out VIMCO learning signals (Mnih & Rezende 2016, eq. for L^{-k}).

    l: [..., K] log-weights (will be detached).  Returns (L, L - L^{-k}) with
    L = logsumexp(l) - log K and L^{-k} = L with l_k replaced by mean_{j != k} l_j.
    """
    l = l.detach()
    K = l.shape[-1]
    logK = math.log(K)
    L = torch.logsumexp(l, dim=-1) - logK                               # [...]
    mean_others = (l.sum(-1, keepdim=True) - l) / (K - 1)                # [..., K]
    # l_rep[..., k, j] = l_j for j != k, mean_others_k for j == k
    l_rep = l.unsqueeze(-2).expand(*l.shape[:-1], K, K).clone()
    eye = torch.eye(K, dtype=torch.bool, device=l.device)
    l_rep = torch.where(eye, mean_others.unsqueeze(-1).expand_as(l_rep), l_rep)
    L_minus = torch.logsumexp(l_rep, dim=-1) - logK                      # [..., K]
    return L, L.unsqueeze(-1) - L_minus


class VMA(nn.Module):
    def __init__(self):
        super().__init__()
        self.h = mlp(D, 256, H_DIM)
        self.g = mlp(D, 400, 400, H_DIM)
        self.prior = mlp(H_DIM, 2 * Z)
        self.enc = mlp(2 * H_DIM, 256, 2 * Z)
        self.dec = mlp(Z + H_DIM, 256, 400, D)

    def address(self, x, mem):
        """log q(a | x, mem) for per-episode memory: x [B, D], mem [B, M, D] -> [B, M]."""
        B, M, _ = mem.shape
        hx = self.h(x)                                                   # [B, 128]
        hm = self.h(mem.reshape(B * M, D)).reshape(B, M, H_DIM)          # [B, M, 128]
        logits = torch.einsum("bd,bmd->bm", hx, hm)
        return hx, F.log_softmax(logits, dim=-1)

    def log_weights(self, x, hx, gm):
        """Given the memory read gm [B, K, 128] (K samples), draw z and return l_k minus the
        address terms: log p(z|gm) + log p(x|z,gm) - log q(z|x,gm), shape [B, K]."""
        B, K, _ = gm.shape
        mu_p, s_p = split_gaussian(self.prior(gm))
        mu_q, s_q = split_gaussian(self.enc(torch.cat([hx.unsqueeze(1).expand(B, K, H_DIM), gm], -1)))
        z = mu_q + s_q * torch.randn_like(mu_q)                          # reparameterized
        logits = self.dec(torch.cat([z, gm], -1))                        # [B, K, D]
        log_px = -F.binary_cross_entropy_with_logits(
            logits, x.unsqueeze(1).expand_as(logits), reduction="none").sum(-1)
        return normal_log_prob(z, mu_p, s_p) + log_px - normal_log_prob(z, mu_q, s_q)

    def hard(self, x, mem, K):
        """Returns (loss to minimise, bound L [B])."""
        B, M, _ = mem.shape
        hx, logq_all = self.address(x, mem)                              # [B, M]
        with torch.no_grad():
            a = torch.multinomial(logq_all.exp(), K, replacement=True)   # [B, K]
        logq_a = logq_all.gather(1, a)                                   # [B, K]
        # gather the K sampled entries first; g sees only B*K rows
        m_a = mem.gather(1, a.unsqueeze(-1).expand(B, K, D))             # [B, K, D]
        gm = self.g(m_a.reshape(B * K, D)).reshape(B, K, H_DIM)
        log_pa = -math.log(M)
        l = log_pa - logq_a + self.log_weights(x, hx, gm)                # [B, K]
        L = torch.logsumexp(l, dim=-1) - math.log(K)                     # [B]
        _, sig = vimco_signals(l)
        surrogate = L + (sig.detach() * logq_a).sum(-1)
        return -surrogate.mean(), L.detach()

    def soft(self, x, mem, K):
        B, M, _ = mem.shape
        hx, logq_all = self.address(x, mem)
        gm_all = self.g(mem.reshape(B * M, D)).reshape(B, M, H_DIM)     # g on all M entries
        r = torch.einsum("bm,bmd->bd", logq_all.exp(), gm_all)          # [B, 128]
        l = self.log_weights(x, hx, r.unsqueeze(1).expand(B, K, H_DIM))  # [B, K]
        L = torch.logsumexp(l, dim=-1) - math.log(K)
        return -L.mean(), L.detach()


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def make_data(B, M, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((B, D), 0.5), generator=gen)
    mem = torch.bernoulli(torch.full((B, M, D), 0.5), generator=gen)
    return x, mem


# ----------------------------------------------------------------------------------------------
# Timed training
# ----------------------------------------------------------------------------------------------

def run_config(variant, M, B, K, steps, warmup, lr, seed):
    if variant == "hard" and K < 2:
        sys.exit("bench_vma.py: VIMCO's leave-one-out baseline needs K >= 2")
    torch.manual_seed(seed)
    model = VMA()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, mem = make_data(B, M, seed + 1)          # data prepared once, not timed
    fwd = model.hard if variant == "hard" else model.soft
    rss_before = peak_rss_mb()

    def step():
        opt.zero_grad(set_to_none=True)
        loss, L = fwd(x, mem, K)
        loss.backward()
        opt.step()
        return L.mean().item()

    bounds, times, cpu_times, warmup_ms = [], [], [], []
    load_before = os.getloadavg()[0]
    for i in range(warmup + steps):
        t0, c0 = time.perf_counter(), time.process_time()
        b = step()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        bounds.append(b)
        if i >= warmup:
            times.append(dt)
            cpu_times.append(dc)
        else:
            warmup_ms.append(round(dt * 1000, 1))
    times_sorted = sorted(times)
    med = median(times)
    res = {
        "impl": "pytorch-reference",
        "variant": variant, "M": M, "B": B, "K": K, "D": D, "Z": Z,
        "memory_layout": "per-episode [B, M, D]",
        "steps": steps, "warmup": warmup, "lr": lr, "seed": seed,
        "median_step_s": med,
        "mean_step_s": sum(times) / len(times),
        "min_step_s": times_sorted[0], "max_step_s": times_sorted[-1],
        "median_step_cpu_s": median(cpu_times),
        "warmup_ms": warmup_ms,
        "loadavg_1min_before": load_before, "loadavg_1min_after": os.getloadavg()[0],
        "steps_per_s": 1.0 / med,
        "examples_per_s": B / med,
        "peak_rss_mb": peak_rss_mb(),
        "rss_hwm_before_steps_mb": rss_before,
        "bound_first_step": bounds[0],
        "bound_last_step": bounds[-1],
    }
    res.update(settings())
    return res


def print_human(r):
    print("%-4s M=%-5d B=%d K=%d  %.4f s/step  %.2f steps/s  %.1f ex/s  peak RSS %.0f MB  "
          "bound %.2f -> %.2f" % (r["variant"], r["M"], r["B"], r["K"], r["median_step_s"],
                                  r["steps_per_s"], r["examples_per_s"], r["peak_rss_mb"],
                                  r["bound_first_step"], r["bound_last_step"]))


def thread_flags():
    return ["--torch-threads", str(ARGS.torch_threads),
            "--openblas-threads", os.environ["OPENBLAS_NUM_THREADS"],
            "--interop-threads", str(ARGS.interop_threads)]


def sweep():
    """One subprocess per configuration, so each peak-RSS figure is that configuration's own.
    With --repeats R the whole sweep is run R times (repeat as the outer loop, so that load
    from other processes is spread over the configurations) and the table gives, per
    configuration, the median over the R runs of the per-run median step time."""
    s = settings()
    R = ARGS.repeats
    variants = ARGS.sweep_variants.split(",")
    Ms = [int(m) for m in ARGS.sweep_M.split(",")]
    runs = {}
    for rep in range(R):
        for variant in variants:
            for M in Ms:
                cmd = [sys.executable, os.path.abspath(__file__), "--json", "--variant", variant,
                       "--M", str(M), "--B", str(ARGS.B), "--K", str(ARGS.K),
                       "--steps", str(ARGS.steps), "--warmup", str(ARGS.warmup),
                       "--lr", str(ARGS.lr), "--seed", str(ARGS.seed)] + thread_flags()
                out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                r["repeat"] = rep
                runs.setdefault((variant, M), []).append(r)
                if ARGS.json:
                    print(json.dumps(r), flush=True)
                else:
                    print("# run %d/%d: %s M=%d %.4f s/step (CPU %.4f), load %.1f"
                          % (rep + 1, R, variant, M, r["median_step_s"], r["median_step_cpu_s"],
                             r["loadavg_1min_before"]), file=sys.stderr, flush=True)
    if ARGS.json:
        return runs
    print("# PyTorch reference, bench model (bench-model.md); per-episode memory [B, M, D]")
    print("# python %s, torch %s, torch threads %d, interop %d, OPENBLAS_NUM_THREADS=%s, BLAS %s"
          % (s["python"], s["torch_version"], s["torch_num_threads"],
             s["torch_num_interop_threads"], s["OPENBLAS_NUM_THREADS"], s["blas_libs"]))
    print("# B=%d K=%d, per run: median of %d steps after %d warm-up, Adam lr %g; %d run(s) per "
          "configuration, each in its own process" % (ARGS.B, ARGS.K, ARGS.steps, ARGS.warmup,
                                                      ARGS.lr, R))
    print("| variant | M | s/step | steps/s | examples/s | best run steps/s | CPU s/step "
          "| peak RSS MB | bound (first -> last step) | load 1 min |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for variant in variants:
        for M in Ms:
            rs = runs[(variant, M)]
            t = median([r["median_step_s"] for r in rs])
            print("| %s | %d | %.4f | %.2f | %.1f | %.2f | %.4f | %.0f | %.2f -> %.2f | %s |"
                  % (variant, M, t, 1.0 / t, ARGS.B / t,
                     max(r["steps_per_s"] for r in rs),
                     median([r["median_step_cpu_s"] for r in rs]),
                     max(r["peak_rss_mb"] for r in rs),
                     rs[0]["bound_first_step"], rs[0]["bound_last_step"],
                     "/".join("%.1f" % r["loadavg_1min_before"] for r in rs)))
    return runs


def thread_compare():
    settings_list = [tuple(int(v) for v in t.split("x")) for t in ARGS.thread_compare.split(",")]
    runs = {}
    for rep in range(ARGS.repeats):
        for tt, ob in settings_list:
            cmd = [sys.executable, os.path.abspath(__file__), "--json", "--variant", ARGS.variant,
                   "--M", str(ARGS.M), "--B", str(ARGS.B), "--K", str(ARGS.K),
                   "--steps", str(ARGS.steps), "--warmup", str(ARGS.warmup), "--lr", str(ARGS.lr),
                   "--seed", str(ARGS.seed), "--torch-threads", str(tt),
                   "--openblas-threads", str(ob), "--interop-threads", str(ARGS.interop_threads)]
            out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            runs.setdefault((tt, ob), []).append(r)
            if ARGS.json:
                print(json.dumps(r), flush=True)
    if ARGS.json:
        return runs
    print("# thread settings, %s M=%d B=%d K=%d; per run median of %d steps after %d warm-up; "
          "%d interleaved run(s) per setting; torch %s, BLAS %s"
          % (ARGS.variant, ARGS.M, ARGS.B, ARGS.K, ARGS.steps, ARGS.warmup, ARGS.repeats,
             torch.__version__, blas_info()["blas_libs"]))
    print("| torch.set_num_threads | OPENBLAS_NUM_THREADS | s/step | steps/s | examples/s "
          "| per-run s/step | CPU s/step | load 1 min |")
    print("|---:|---:|---:|---:|---:|---|---:|---|")
    for key in settings_list:
        rs = runs[key]
        t = median([r["median_step_s"] for r in rs])
        print("| %d | %d | %.4f | %.2f | %.1f | %s | %.4f | %s |"
              % (key[0], key[1], t, 1 / t, ARGS.B / t,
                 " ".join("%.4f" % r["median_step_s"] for r in rs),
                 median([r["median_step_cpu_s"] for r in rs]),
                 "/".join("%.1f" % r["loadavg_1min_before"] for r in rs)))
    return runs


# ----------------------------------------------------------------------------------------------
# Addressing only: q(a | x) against one large memory [N, D] shared by all queries
# ----------------------------------------------------------------------------------------------

def addressing_only(N, Q, K, steps, warmup, seed):
    torch.manual_seed(seed)
    h = mlp(D, 256, H_DIM)
    gen = torch.Generator().manual_seed(seed + 1)
    mem = torch.bernoulli(torch.full((N, D), 0.5), generator=gen)    # shared memory [N, D]
    xq = torch.bernoulli(torch.full((Q, D), 0.5), generator=gen)     # Q queries
    rss_before = peak_rss_mb()

    def address(hm, mode):
        logits = h(xq) @ hm.t()                                      # [Q, N]
        if mode == "top1":
            return logits.argmax(-1)                                 # [Q]
        probs = torch.softmax(logits, -1)
        return torch.multinomial(probs, K, replacement=True)         # [Q, K]

    results = {}
    with torch.no_grad():
        hm_pre = h(mem)                                              # precomputed embedding
        for mode in ("top1", "sample"):
            for incl in (False, True):
                times = []
                for i in range(warmup + steps):
                    t0 = time.perf_counter()
                    hm = h(mem) if incl else hm_pre
                    out = address(hm, mode)
                    dt = time.perf_counter() - t0
                    if i >= warmup:
                        times.append(dt)
                key = "%s_%s" % (mode, "incl_embedding" if incl else "precomputed_embedding")
                m = median(times)
                assert out.shape[0] == Q
                results[key] = {"median_call_s": m, "queries_per_s": Q / m}
    res = {
        "impl": "pytorch-reference", "mode": "addressing-only",
        "memory_layout": "shared [N, D]", "N": N, "queries": Q, "K_samples": K,
        "steps": steps, "warmup": warmup,
        "note": ("one call = h(queries), logits [Q, N], then argmax (top1) or softmax + K "
                 "samples with replacement (sample); *_incl_embedding also recomputes h(mem) "
                 "for all N entries inside the timed call; no_grad"),
        "results": results, "loadavg_1min_after": os.getloadavg()[0],
        "peak_rss_mb": peak_rss_mb(), "rss_hwm_before_steps_mb": rss_before,
    }
    res.update(settings())
    return res


# ----------------------------------------------------------------------------------------------
# Correctness checks
# ----------------------------------------------------------------------------------------------

def vimco_signals_loop(l_row):
    """Direct, per-sample loop formula in float64 (python floats) for one example."""
    K = len(l_row)
    def lse(v):
        m = max(v)
        return m + math.log(sum(math.exp(u - m) for u in v))
    L = lse(l_row) - math.log(K)
    sig = []
    for k in range(K):
        others = [l_row[j] for j in range(K) if j != k]
        rep = list(l_row)
        rep[k] = sum(others) / (K - 1)
        sig.append(L - (lse(rep) - math.log(K)))
    w_hat = [math.exp(u - lse(l_row)) for u in l_row]
    return L, sig, w_hat


def check():
    ok = True
    counts = [0, 0]

    def report(name, passed, detail):
        nonlocal ok
        ok = ok and passed
        counts[0 if passed else 1] += 1
        print("[%s] %s: %s" % ("PASS" if passed else "FAIL", name, detail))

    # 1. VIMCO leave-one-out signals vs the direct loop formula.
    g = torch.Generator().manual_seed(123)
    worst = 0.0
    for K in (2, 3, 4, 8):
        for scale in (1.0, 30.0, 500.0):
            l = torch.randn(16, K, generator=g, dtype=torch.float64) * scale - 543.0
            L, sig = vimco_signals(l)
            for b in range(l.shape[0]):
                Lr, sr, _ = vimco_signals_loop(l[b].tolist())
                worst = max(worst, abs(L[b].item() - Lr), max(abs(a - c) for a, c in zip(sig[b].tolist(), sr)))
    report("VIMCO signals vs loop", worst < 1e-9, "max abs diff %.3g (float64, K in 2,3,4,8)" % worst)

    # 1b. Gradient of the surrogate w.r.t. log q(a_k) equals (L - L^{-k}) - w_hat_k.
    K = 4
    logq = torch.randn(8, K, generator=g, dtype=torch.float64).requires_grad_(True)
    rest = torch.randn(8, K, generator=g, dtype=torch.float64) * 5 - 540
    l = rest - logq
    L = torch.logsumexp(l, -1) - math.log(K)
    _, sig = vimco_signals(l)
    (L + (sig.detach() * logq).sum(-1)).sum().backward()
    worst = 0.0
    for b in range(8):
        _, sr, wr = vimco_signals_loop(l[b].tolist())
        worst = max(worst, max(abs(logq.grad[b, k].item() - (sr[k] - wr[k])) for k in range(K)))
    report("surrogate grad wrt log q(a_k) = signal_k - w_hat_k", worst < 1e-9, "max abs diff %.3g" % worst)

    # 1c. Unbiasedness on a toy small enough to enumerate: M=3, K=3, l_k = f(a_k) - log q(a_k)
    # + log p(a_k).  Exact d E[L_K] / d theta by enumerating all M^K tuples; VIMCO estimate as
    # the mean of many draws; must agree within 4 standard errors.
    M, K = 3, 3
    theta = torch.tensor([0.3, -0.5, 0.9], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([-2.0, 1.0, 0.5], dtype=torch.float64)
    logp = -math.log(M)
    logq = F.log_softmax(theta, -1)
    tuples = torch.cartesian_prod(*[torch.arange(M)] * K)           # [M^K, K]
    lq = logq[tuples]
    l = f[tuples] + logp - lq
    exact_obj = (lq.sum(-1).exp() * (torch.logsumexp(l, -1) - math.log(K))).sum()
    exact = torch.autograd.grad(exact_obj, theta)[0]
    Ndraw = 200000
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        q = logq.exp()
    a = torch.multinomial(q.expand(Ndraw, M), K, replacement=True, generator=gen)
    # autograd per-draw grads would be slow; use the analytic per-draw gradient and check it
    # against autograd of the summed surrogate.
    th = theta.detach().clone().requires_grad_(True)
    lq_a = F.log_softmax(th, -1)[a]
    l_a = f[a] + logp - lq_a
    L_a = torch.logsumexp(l_a, -1) - math.log(K)
    _, sig = vimco_signals(l_a)
    auto_sum = torch.autograd.grad((L_a + (sig.detach() * lq_a).sum(-1)).sum(), th)[0]
    with torch.no_grad():
        w_hat = torch.softmax(l_a, -1)
        coef = sig - w_hat                                          # [N, K]
        onehot = F.one_hot(a, M).double() - q                        # d log q(a) / d theta
        per_draw = (coef.unsqueeze(-1) * onehot).sum(1)              # [N, M]
    diff_auto = (per_draw.sum(0) - auto_sum).abs().max().item()
    report("per-draw analytic grad == autograd of surrogate", diff_auto < 1e-6 * Ndraw ** 0.5,
           "max abs diff %.3g" % diff_auto)
    est = per_draw.mean(0)
    se = per_draw.std(0) / Ndraw ** 0.5
    z = ((est - exact) / se).abs().max().item()
    report("VIMCO unbiased (enumeration, M=3 K=3, %d draws)" % Ndraw, z < 4.0,
           "exact %s est %s max |z| %.2f" % ([round(v, 5) for v in exact.tolist()],
                                            [round(v, 5) for v in est.tolist()], z))

    # 2. Bound at init ~ -D log 2 for random binary data; gradients run and are finite.
    ref = D * math.log(2.0)
    for variant in ("hard", "soft"):
        torch.manual_seed(0)
        model = VMA()
        x, mem = make_data(32, 16, 1)
        rows = []
        hook = model.g.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
        loss, L = (model.hard if variant == "hard" else model.soft)(x, mem, 4)
        hook.remove()
        loss.backward()
        b = L.mean().item()
        report("%s bound at init ~ -D log 2 = %.1f" % (variant, -ref), abs(b + ref) < 25.0,
               "bound %.2f" % b)
        gh = sum(p.grad.abs().sum().item() for p in model.h.parameters())
        gg = sum(p.grad.abs().sum().item() for p in model.g.parameters())
        finite = all(torch.isfinite(p.grad).all().item() for p in model.parameters())
        report("%s gradients finite and nonzero for h and g" % variant,
               finite and gh > 0 and gg > 0, "|grad h|_1 %.3g |grad g|_1 %.3g" % (gh, gg))
        expect = 32 * 4 if variant == "hard" else 32 * 16
        report("%s: g applied to %d rows" % (variant, expect), rows == [expect], "rows %s" % rows)

    # 3. Hard-variant h gradient: VIMCO part vs a direct loop over examples and samples.
    torch.manual_seed(0)
    model = VMA().double()
    x, mem = make_data(4, 8, 1)
    x, mem = x.double(), mem.double()
    torch.manual_seed(5)
    loss, _ = model.hard(x, mem, 4)
    g_vec = torch.autograd.grad(loss, list(model.h.parameters()))
    # recompute with the same random draws, in a loop, using the loop signals
    torch.manual_seed(5)
    B, Mm, _ = mem.shape
    hx, logq_all = model.address(x, mem)
    with torch.no_grad():
        a = torch.multinomial(logq_all.exp(), 4, replacement=True)
    total = 0.0
    logq_a = logq_all.gather(1, a)
    m_a = mem.gather(1, a.unsqueeze(-1).expand(B, 4, D))
    gm = model.g(m_a.reshape(B * 4, D)).reshape(B, 4, H_DIM)
    l = -math.log(Mm) - logq_a + model.log_weights(x, hx, gm)
    for b in range(B):
        _, sr, _ = vimco_signals_loop(l[b].tolist())
        Lb = torch.logsumexp(l[b], 0) - math.log(4)
        total = total - (Lb + sum(sr[k] * logq_a[b, k] for k in range(4))) / B
    g_loop = torch.autograd.grad(total, list(model.h.parameters()))
    d = max((u - v).abs().max().item() for u, v in zip(g_vec, g_loop))
    report("hard: h gradient, vectorized signals vs per-example loop signals (float64)", d < 1e-8, "max abs diff %.3g" % d)

    # 4. One full timed-style training step runs for both variants.
    for variant in ("hard", "soft"):
        r = run_config(variant, 8, 32, 4, 1, 0, 1e-4, 0)
        report("%s one training step" % variant, math.isfinite(r["bound_last_step"]),
               "bound %.2f, %.4f s" % (r["bound_last_step"], r["median_step_s"]))
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    print("%d passed, %d failed" % tuple(counts))
    return ok


# ----------------------------------------------------------------------------------------------

def main():
    if ARGS.which_python:
        print(sys.executable)
        return 0
    if ARGS.check:
        print(json.dumps(settings()))
        return 0 if check() else 1
    if ARGS.addressing_only:
        r = addressing_only(ARGS.memory, ARGS.queries, ARGS.K, ARGS.steps, ARGS.warmup, ARGS.seed)
        if ARGS.json:
            print(json.dumps(r))
        else:
            print("# addressing only, shared memory [N=%d, D=%d], %d queries/call, K=%d samples; "
                  "torch threads %d, OPENBLAS_NUM_THREADS=%s, BLAS %s"
                  % (r["N"], D, r["queries"], r["K_samples"], r["torch_num_threads"],
                     r["OPENBLAS_NUM_THREADS"], r["blas_libs"]))
            for k, v in r["results"].items():
                print("%-32s %.5f s/call  %10.1f queries/s" % (k, v["median_call_s"], v["queries_per_s"]))
            print("peak RSS %.0f MB" % r["peak_rss_mb"])
        return 0
    if ARGS.sweep:
        sweep()
        return 0
    if ARGS.thread_compare:
        thread_compare()
        return 0
    r = run_config(ARGS.variant, ARGS.M, ARGS.B, ARGS.K, ARGS.steps, ARGS.warmup, ARGS.lr, ARGS.seed)
    if ARGS.json:
        print(json.dumps(r))
    else:
        print_human(r)
        s = settings()
        print("# torch %s, torch threads %d, OPENBLAS_NUM_THREADS=%s, BLAS %s"
              % (s["torch_version"], s["torch_num_threads"], s["OPENBLAS_NUM_THREADS"], s["blas_libs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
