#!/usr/bin/env python3
"""PyTorch twin of vmm's convolutional VMA model (models/vma_omniglot.vmm), for timing.

Variational memory addressing (Bornschein, Mnih, Zoran, Rezende, NeurIPS 2017,
arXiv:1709.07116) with convolutional encoders and decoder, written by hand in plain PyTorch
to time the same work as `node bin/run-ts.mjs bench/vmm_config.ts --model conv` does.

Memory: per-episode `mem [B, M, D]` plus two learned "dummy" entries appended to every
episode's memory (M + 2 entries). D = 784 (28x28), Z = 32, H = 128. Networks:
  h, g  : 1x28x28 -> conv 3x3/2 (32) -> relu -> conv 3x3/2 (64) -> relu -> flatten 3136 -> linear 128
  prior : 128 -> 2Z;  enc : [h(x), g(m_a)] 256 -> 256 -> 2Z
  dec   : [z, g(m_a)] 160 -> 3136 -> relu -> 64x7x7 -> deconv 3x3/2 (32) -> relu -> deconv 3x3/2 (1)
          -> 784 Bernoulli logits
  p(a) uniform over the M + 2 entries; q(a | x, mem) = softmax_i(h(x) . h(m_i)).
Padding: tfjs's `same` for 3x3 stride 2 pads 0 before and 1 after; PyTorch pads symmetrically
(padding=1, output_padding=1 for the transposed convolutions). Same sizes and arithmetic.

Hard variant only (the model's own estimator): K samples (a_k, z_k), g applied only to the K
gathered entries, VIMCO with the geometric leave-one-out baseline (Mnih & Rezende 2016,
arXiv:1602.06725), z reparameterized; one step = zero_grad + forward + backward + Adam (lr 1e-4).

Threads as in bench_vma.py: OPENBLAS_NUM_THREADS (default 2) and torch.set_num_threads(1) are
set before torch is imported. NB: PyTorch's CPU convolutions run through its own kernels
(mkldnn/oneDNN where built, else im2col + BLAS), so torch threads matter more here than for
bench_vma.py; --torch-threads sets them.

  bench_vma_conv.py --M 32 --B 32 --K 4 --steps 10 --warmup 3 --json
  bench_vma_conv.py --device cuda --B 256 --json       (bench/gpu.sh: beside vmm's webgpu backend)

On CUDA the model runs as a user would write it: default settings (float32; cuDNN's own choice of
convolution algorithms, TF32 for convolutions as PyTorch enables by default), data on the device.
"""
import argparse
import json
import math
import os
import sys
import time

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--variant", choices=["hard"], default="hard")
p.add_argument("--M", type=int, default=32)
p.add_argument("--B", type=int, default=32)
p.add_argument("--K", type=int, default=4)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--lr", type=float, default=1e-4)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--json", action="store_true")
p.add_argument("--torch-threads", type=int, default=1)
p.add_argument("--openblas-threads", type=int, default=None)
p.add_argument("--device", default="cpu", help="cpu or cuda (cuda: each timed step ends with torch.cuda.synchronize)")
ARGS = p.parse_args()
if ARGS.openblas_threads is not None:
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.openblas_threads)
else:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ["GOTO_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"]

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # Debian's python3-torch is for /usr/bin/python3
    if not os.environ.get("VMM_BENCH_REEXEC") and os.path.exists("/usr/bin/python3"):
        os.environ["VMM_BENCH_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("bench_vma_conv.py: no python with torch (apt-get install -y python3-torch)")

torch.set_num_threads(ARGS.torch_threads)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

D, Z, H = 784, 32, 128
LOG_2PI = math.log(2.0 * math.pi)


def conv_encoder():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(3136, H))


def normal_log_prob(z, mu, scale):
    return (-0.5 * ((z - mu) / scale) ** 2 - torch.log(scale) - 0.5 * LOG_2PI).sum(-1)


def split_gaussian(out):
    mu, s = out.chunk(2, dim=-1)
    return mu, F.softplus(s) + 1e-4


def vimco_signals(l):
    """L - L^{-k}, geometric leave-one-out (as bench_vma.py, checked there)."""
    l = l.detach()
    K = l.shape[-1]
    L = torch.logsumexp(l, -1) - math.log(K)
    mean_others = (l.sum(-1, keepdim=True) - l) / (K - 1)
    l_rep = l.unsqueeze(-2).expand(*l.shape[:-1], K, K).clone()
    eye = torch.eye(K, dtype=torch.bool, device=l.device)
    l_rep = torch.where(eye, mean_others.unsqueeze(-1).expand_as(l_rep), l_rep)
    return L.unsqueeze(-1) - (torch.logsumexp(l_rep, -1) - math.log(K))


class ConvVMA(nn.Module):
    def __init__(self):
        super().__init__()
        self.dummies = nn.Parameter(torch.zeros(2, D))
        self.h = conv_encoder()
        self.g = conv_encoder()
        self.prior = nn.Linear(H, 2 * Z)
        self.enc = nn.Sequential(nn.Linear(2 * H, 256), nn.ReLU(), nn.Linear(256, 2 * Z))
        self.dec = nn.Sequential(
            nn.Linear(Z + H, 3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 3, stride=2, padding=1, output_padding=1), nn.Flatten())

    def loss(self, x, mem, K):
        B, M, _ = mem.shape
        full = torch.cat([mem, self.dummies.unsqueeze(0).expand(B, 2, D)], 1)   # [B, M+2, D]
        E = M + 2
        hx = self.h(x)
        hm = self.h(full.reshape(B * E, D)).reshape(B, E, H)                     # h on every entry
        logq_all = F.log_softmax(torch.einsum("bd,bmd->bm", hx, hm), -1)
        with torch.no_grad():
            a = torch.multinomial(logq_all.exp(), K, replacement=True)
        logq_a = logq_all.gather(1, a)
        m_a = full.gather(1, a.unsqueeze(-1).expand(B, K, D))
        gm = self.g(m_a.reshape(B * K, D)).reshape(B, K, H)                      # g on B*K rows
        mu_p, s_p = split_gaussian(self.prior(gm))
        mu_q, s_q = split_gaussian(self.enc(torch.cat([hx.unsqueeze(1).expand(B, K, H), gm], -1)))
        z = mu_q + s_q * torch.randn_like(mu_q)
        logits = self.dec(torch.cat([z, gm], -1).reshape(B * K, Z + H)).reshape(B, K, D)
        log_px = -F.binary_cross_entropy_with_logits(logits, x.unsqueeze(1).expand_as(logits), reduction="none").sum(-1)
        l = -math.log(E) - logq_a + normal_log_prob(z, mu_p, s_p) + log_px - normal_log_prob(z, mu_q, s_q)
        L = torch.logsumexp(l, -1) - math.log(K)
        surrogate = L + (vimco_signals(l) * logq_a).sum(-1)
        return -surrogate.mean(), L.detach()


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def main():
    dev = torch.device(ARGS.device)
    cuda = dev.type == "cuda"
    torch.manual_seed(ARGS.seed)
    model = ConvVMA().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=ARGS.lr)
    gen = torch.Generator().manual_seed(ARGS.seed + 1)
    x = torch.bernoulli(torch.full((ARGS.B, D), 0.5), generator=gen).to(dev)
    mem = torch.bernoulli(torch.full((ARGS.B, ARGS.M, D), 0.5), generator=gen).to(dev)
    times, bounds = [], []
    load_before = os.getloadavg()[0]
    for i in range(ARGS.warmup + ARGS.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, L = model.loss(x, mem, ARGS.K)
        loss.backward()
        opt.step()
        b = L.mean().item()
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        bounds.append(b)
        if i >= ARGS.warmup:
            times.append(dt)
    import resource
    med = median(times)
    res = {
        "impl": "pytorch-reference-conv", "model": "conv", "variant": "hard", "M": ARGS.M, "B": ARGS.B, "K": ARGS.K,
        "device": ARGS.device, "cuda_device": torch.cuda.get_device_name(dev) if cuda else None,
        "median_step_s": med, "min_step_s": min(times), "max_step_s": max(times),
        "steps_per_s": 1.0 / med, "steps_per_s_best": 1.0 / min(times), "examples_per_s": ARGS.B / med,
        "peak_cuda_mb": torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "bound_first_step": bounds[0], "bound_last_step": bounds[-1],
        "loadavg_1min_before": load_before, "loadavg_1min_after": os.getloadavg()[0],
        "torch_version": torch.__version__, "torch_num_threads": torch.get_num_threads(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "mkldnn": bool(torch.backends.mkldnn.is_available()), "python": sys.executable,
    }
    if ARGS.json:
        print(json.dumps(res))
    else:
        print("conv hard M=%d B=%d K=%d on %s  %.4f s/step  %.2f steps/s  bound %.2f -> %.2f  (torch %s, %d thread(s), OPENBLAS_NUM_THREADS=%s)" % (
            ARGS.M, ARGS.B, ARGS.K, ARGS.device, med, 1.0 / med, bounds[0], bounds[-1], torch.__version__, torch.get_num_threads(), res["OPENBLAS_NUM_THREADS"]))


if __name__ == "__main__":
    main()
