"""The fixed runtime of a model exported by `vmm export pytorch` (docs/scaling.md).

Everything the generated `model.py` does not spell out: plated helpers (values carry leading
axes [E?, K, B] before their event axes, the way vmm's lowering names them `enum, sample,
batch`), the trace that accumulates log-densities, noise (fresh, or replayed from a vmm trace),
safetensors I/O (by hand when the `safetensors` package is absent), Adam as vmm runs it, the
data files vmm reads and few-shot episodes, and the vmm run folder that `vmm eval` opens.

Depends on torch and numpy only. This file is copied unchanged into every export.
"""
import json
import math
import os
import struct
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)

# ---------------------------------------------------------------------------------------------
# Plated helpers. A "lifted" value has exactly L leading plate axes (size 1 where it does not
# depend on the plate) followed by its event axes; params and constants are not lifted (event
# axes only) and broadcast from the right.


def pad_ev(v, L, n):
    """Inserts n singleton event axes right after the L plate axes (vmm's alignTo padding)."""
    if n <= 0:
        return v
    return v.reshape(tuple(v.shape[:L]) + (1,) * n + tuple(v.shape[L:]))


def _lead(xs, lifted, L):
    shapes = [tuple(x.shape[:L]) for x, l in zip(xs, lifted) if l]
    return tuple(torch.broadcast_shapes(*shapes)) if shapes else ()


def expand_lead(x, lifted, lead, L):
    """x with its plate axes broadcast to `lead` (an unlifted x gets them)."""
    ev = tuple(x.shape[L:]) if lifted else tuple(x.shape)
    return x.expand(*lead, *ev)


def concat(xs, lifted, L, first=False):
    """vmm's concat (last event axis) and stack (first event axis): plates broadcast."""
    lead = _lead(xs, lifted, L)
    ys = [expand_lead(x, l, lead, L) for x, l in zip(xs, lifted)]
    return torch.cat(ys, dim=len(lead) if first else -1)


def take(table, idx, L, lifted):
    """`table[idx]` on the table's first event axis; idx holds integer indices [L plate axes]."""
    if not lifted:
        return table[idx]
    lead = tuple(torch.broadcast_shapes(tuple(table.shape[:L]), tuple(idx.shape)))
    rest = tuple(table.shape[L + 1:])
    t = table.expand(*lead, *table.shape[L:])
    i = idx.expand(*lead).reshape(*lead, 1, *([1] * len(rest))).expand(*lead, 1, *rest)
    return torch.gather(t, L, i).squeeze(L)


def blend(w, w_lifted, entries, e_lifted, L):
    """A soft read, sum_i w_i entries_i (vmm's blend): w the attention weights [plates..., M],
    entries [plates..., M, ...] (or [M, ...] unlifted); the result is lifted."""
    if not w_lifted:
        w = w.reshape((1,) * L + tuple(w.shape))
    if not e_lifted:
        entries = entries.reshape((1,) * L + tuple(entries.shape))
    rest = entries.dim() - L - 1
    return (w.reshape(tuple(w.shape) + (1,) * rest) * entries).sum(L)


def soft_weights(dist):
    """The attention weights of a soft address: its Categorical's probabilities."""
    return torch.exp(dist.params[0])


def skip(x, s, rank):
    """A net's `skip` stage: its extra input s joined to x on the first of the `rank` event axes
    (channels of an image, features of a vector), leading axes broadcast."""
    lead = tuple(torch.broadcast_shapes(tuple(x.shape[: x.dim() - rank]), tuple(s.shape[: s.dim() - rank])))
    x = x.expand(*lead, *x.shape[x.dim() - rank:])
    s = s.expand(*lead, *s.shape[s.dim() - rank:])
    return torch.cat([x, s], dim=-rank)


def matmul(l, le, r, re):
    """`l @ r`: the last axis of l with the first event axis of r (event ranks <= 2)."""
    if le == 1:
        l = l.unsqueeze(-2)
    if re == 1:
        r = r.unsqueeze(-1)
    out = torch.matmul(l, r)
    if re == 1:
        out = out.squeeze(-1)
    if le == 1:
        out = out.squeeze(-2)
    return out


def attend(q, qe, k, v, lifted, L):
    """Scaled dot-product attention: softmax_m(q . k_m / sqrt(H)) v_m (Vaswani et al. 2017)."""
    h = q.shape[-1]
    if qe == 1:
        q = q.unsqueeze(-2)
    w = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(h), dim=-1)
    out = torch.matmul(w, v)
    return out.squeeze(-2) if qe == 1 else out


# ---------------------------------------------------------------------------------------------
# The neural long-term memory (Titans: Behrouz, Zhong & Mirrokni 2025, arXiv:2501.00663,
# Sec. 3.1-3.2), as src/lower/neural_memory.ts writes it: an MLP whose weights (a leading batch
# axis: one memory per episode) take gradient steps on ||Mem(k_t) - v_t||^2 with momentum and
# forgetting, in chunks whose gradients are all taken at the chunk's starting weights; the inner
# gradient is written in closed form, so autograd differentiates through the writes.

NEURAL_ACT = {'relu': torch.relu, 'tanh': torch.tanh, 'sigmoid': torch.sigmoid, 'softplus': F.softplus, 'identity': lambda a: a}


def _neural_act_grad(fn, a):
    if fn == 'relu':
        return (a > 0).to(a.dtype)
    if fn == 'tanh':
        t = torch.tanh(a)
        return 1 - t * t
    if fn == 'sigmoid':
        s = torch.sigmoid(a)
        return s * (1 - s)
    if fn == 'softplus':
        return torch.sigmoid(a)
    return torch.ones_like(a)


def l2_normalize(x):
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + 1e-12)


def _mlp_forward(w, b, x, fn):
    pre, inputs = [], []
    h = x
    last = len(w) - 1
    for l in range(last + 1):
        inputs.append(h)
        a = torch.matmul(h, w[l]) + b[l].unsqueeze(1)
        pre.append(a)
        h = a if l == last else NEURAL_ACT[fn](a)
    return h, pre, inputs


def _write_chunk(state, k, v, theta, eta, alpha, fn, bias):
    mw, mb, sw, sb = state
    B, C = k.shape[0], k.shape[1]
    out, pre, h = _mlp_forward(mw, mb, k, fn)
    n = len(mw)
    delta = [None] * n
    d = 2 * (out - v)
    for l in range(n - 1, -1, -1):
        delta[l] = d
        if l > 0:
            d = torch.matmul(d, mw[l].transpose(-1, -2)) * _neural_act_grad(fn, pre[l - 1])
    log_beta = torch.cumsum(torch.log(torch.clamp(1 - alpha, min=1e-12)), 1)
    log_e = torch.cumsum(torch.log(torch.clamp(eta, min=1e-12)), 1)
    log_beta_c = log_beta[:, C - 1:C]
    log_e_c = log_e[:, C - 1:C]
    r = torch.exp(log_beta_c - log_beta)  # beta_C / beta_i
    diff = log_e.unsqueeze(2) - log_e.unsqueeze(1)  # E_i / E_j in log space, [B, C(i), C(j)]
    lower = torch.tril(torch.ones(C, C, dtype=torch.bool, device=k.device))
    A = torch.exp(torch.where(lower, diff, torch.full_like(diff, -1e9)))
    wj = theta * torch.matmul(r.unsqueeze(1), A).squeeze(1)
    c_s = (r * torch.exp(log_e)).sum(1)
    u = theta * torch.exp(log_e_c - log_e)
    beta_c = torch.exp(log_beta_c.squeeze(1))
    e_c = torch.exp(log_e_c.squeeze(1))
    nw, nb, nsw, nsb = [], [], [], []
    for l in range(n):
        hl, dl = h[l], delta[l]
        gw = lambda c: torch.matmul(hl.transpose(-1, -2), dl * c.unsqueeze(2))
        gb = lambda c: torch.matmul(c.unsqueeze(1), dl).squeeze(1)
        nw.append(beta_c.reshape(B, 1, 1) * mw[l] + c_s.reshape(B, 1, 1) * sw[l] - gw(wj))
        nb.append(beta_c.reshape(B, 1) * mb[l] + c_s.reshape(B, 1) * sb[l] - gb(wj) if bias else mb[l])
        nsw.append(e_c.reshape(B, 1, 1) * sw[l] - gw(u))
        nsb.append(e_c.reshape(B, 1) * sb[l] - gb(u) if bias else sb[l])
    return nw, nb, nsw, nsb


def neural_write(w0, b0, k, v, g, lr, momentum, forget, fn, chunk, bias):
    """The written memory of B episodes (their T entries' keys k [B, T, in], values v [B, T, out],
    gate logits g [B, T, 3]), from the learned initial weights w0, b0 and zero surprise: theta =
    lr sigmoid(g0), eta = momentum sigmoid(g1), alpha = forget sigmoid(g2 - 4)."""
    B, T = k.shape[0], k.shape[1]
    mw = [w.unsqueeze(0).expand(B, *w.shape) for w in w0]
    mb = [b.unsqueeze(0).expand(B, *b.shape) for b in b0]
    state = (mw, mb, [torch.zeros_like(w) for w in mw], [torch.zeros_like(b) for b in mb])
    s = torch.sigmoid(g + torch.tensor([0.0, 0.0, -4.0], device=g.device))
    theta, eta, alpha = lr * s[..., 0], momentum * s[..., 1], forget * s[..., 2]
    kn = l2_normalize(k)
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        state = _write_chunk(state, kn[:, t0:t1], v[:, t0:t1], theta[:, t0:t1], eta[:, t0:t1], alpha[:, t0:t1], fn, bias)
    return state


def neural_read(state, q, lifted, L, fn):
    """Mem(normalize(q)) of each episode's written memory, for q [plates..., ..., in]: the batch
    plate (the L-th leading axis) moved first, as vmm's neuralRead does."""
    mw, mb = state[0], state[1]
    B = mw[0].shape[0]
    if not lifted:
        q = q.reshape((1,) * L + tuple(q.shape))
    shape = list(q.shape)
    shape[L - 1] = B
    moved = q.expand(*shape).movedim(L - 1, 0)
    out, _, _ = _mlp_forward(mw, mb, l2_normalize(moved.reshape(B, -1, moved.shape[-1])), fn)
    return out.reshape(*moved.shape[:-1], out.shape[-1]).movedim(0, L - 1)


# ---------------------------------------------------------------------------------------------
# Net layers on [N..., event] tensors; weights in vmm's layouts (dense [in, out], conv2d
# [k, k, in, out], deconv2d [k, k, out, in]) so that a vmm checkpoint loads without conversion.


def linear(x, w, b):
    return torch.matmul(x, w) + b


def _flat_images(x, rank):
    lead = tuple(x.shape[: x.dim() - rank])
    return x.reshape((-1,) + tuple(x.shape[x.dim() - rank:])), lead


def _same_pad(n, k, s):
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv2d(x, w, b, stride, padding):
    """TensorFlow's conv2d ('same': padding split low/high as tf does, the extra row at the end)."""
    xs, lead = _flat_images(x, 3)
    if padding == 'same':
        ph = _same_pad(xs.shape[2], w.shape[0], stride)
        pw = _same_pad(xs.shape[3], w.shape[1], stride)
        xs = F.pad(xs, (pw[0], pw[1], ph[0], ph[1]))
    y = F.conv2d(xs, w.permute(3, 2, 0, 1), b, stride=stride)
    return y.reshape(lead + tuple(y.shape[1:]))


def deconv2d(x, w, b, stride, padding):
    """TensorFlow's conv2dTranspose: 'same' gives n * stride, cropped as tf crops."""
    xs, lead = _flat_images(x, 3)
    k = w.shape[0]
    n_h, n_w = xs.shape[2], xs.shape[3]
    y = F.conv_transpose2d(xs, w.permute(3, 2, 0, 1), None, stride=stride)
    if padding == 'same':
        def crop(y, axis, n):
            want = n * stride
            total = max(k - stride, 0)
            lo = total // 2
            have = y.shape[axis]
            if have - lo < want:
                pad = [0, 0, 0, 0]
                pad[(3 - axis) * 2 + 1] = want - (have - lo)
                y = F.pad(y, pad)
            return y.narrow(axis, lo, want)
        y = crop(crop(y, 2, n_h), 3, n_w)
    y = y + b.reshape(1, -1, 1, 1)
    return y.reshape(lead + tuple(y.shape[1:]))


ACTIVATIONS = {
    'relu': torch.relu,
    'tanh': torch.tanh,
    'sigmoid': torch.sigmoid,
    'elu': F.elu,
    'softplus': F.softplus,
    'identity': lambda x: x,
}


def init_param(shape, init, generator):
    """vmm's initialization in distribution (src/lower/nets.ts, src/lower/params.ts): weights
    uniform in [-limit, limit] (Glorot, or He before a relu / elu), biases zero or `bias:`'s constant, params
    normal(0, std) or zero. The same distribution, not vmm's draws: --init RUN loads those."""
    kind, a = init
    if kind == 'uniform':
        return (torch.rand(shape, generator=generator) * 2 - 1) * a
    if kind == 'normal':
        return torch.randn(shape, generator=generator) * a
    if kind == 'constant':
        return torch.full(shape, float(a))
    return torch.zeros(shape)


# ---------------------------------------------------------------------------------------------
# Families: the generated model.py defines one class per family it uses (from vmm's registry);
# this base class holds what they share: broadcasting, summing the event axes, drawing.


class Family:
    reparameterized = False
    enumerable = False

    def __init__(self, *params):
        self.params = [p if torch.is_tensor(p) else torch.tensor(float(p)) for p in params]

    def score(self, x, ev):
        """log density of x summed over its `ev` event axes."""
        lp = self.log_prob(x)
        return lp.sum(dim=tuple(range(lp.dim() - ev, lp.dim()))) if ev else lp

    def draw_shape(self, K, L, event):
        full = tuple(torch.broadcast_shapes(*[tuple(p.shape) for p in self.params]))
        if self.enumerable:
            full = full[:-1]
        n_ev = len(event)
        lead = full[: len(full) - n_ev] if n_ev else full
        lead = (1,) * (L - len(lead)) + tuple(lead)
        lead = lead[: L - 2] + (K,) + lead[L - 1:]
        return lead + tuple(event)


class LocScale(Family):
    """A location-scale family, params (loc, scale): x = loc + scale * eps, eps from the standard
    member (its class's `noise`); `noise_of` recovers eps from a replayed value."""
    reparameterized = True

    def rsample(self, eps):
        loc, scale = self.params
        return loc + scale * eps

    def noise_of(self, x):
        loc, scale = self.params
        return (x - loc) / scale


class Noise:
    """Fresh noise from a torch.Generator (training), or the values of a vmm trace (replay):
    a replayed site takes vmm's value; a reparameterized one recovers its noise from it, so the
    pathwise gradient flows as in vmm."""

    def __init__(self, generator=None, device='cpu', values=None):
        self.generator = generator
        self.device = device
        self.values = values or {}

    def normal(self, shape):
        return torch.randn(shape, generator=self.generator, device=self.device)

    def uniform(self, shape):
        u = torch.rand(shape, generator=self.generator, device=self.device)
        return u.clamp(1e-20, 1 - 2 ** -24)

    def gumbel(self, shape):
        return -torch.log(-torch.log(self.uniform(shape)))


class Trace:
    """The accumulators of one pass of guide then model (vmm's runTrace): log p, log q, the
    score-function part of log q, log q of an enumerated site; per-site densities for tests.
    `enum_sites`: the site that takes every value on the enum plate (the `enumerate` handler);
    `wake`: every guide draw without a gradient, its density in the score term (the `wake` one)."""

    def __init__(self, K, B, L, noise, enum_sites=(), wake=False):
        self.K, self.B, self.L = K, B, L
        self.E = 1
        self.noise = noise
        self.enum_sites = set(enum_sites)
        self.wake = wake
        self.terms = {}
        self.sites = {}
        self.values = {}
        self.dists = {}
        self.baseline = None

    def add(self, term, v):
        self.terms[term] = v if term not in self.terms else self.terms[term] + v

    def guide(self, name, dist, event):
        ev = len(event)
        if name in self.enum_sites:
            n = dist.params[0].shape[-1]
            self.E = n
            shape = [1] * self.L
            shape[0] = n
            value = torch.arange(n, device=dist.params[0].device).reshape(shape)
            lp = dist.score(value, ev)
            self.sites[('guide', name)] = lp
            self.add('logQEnum', lp)
            return value
        shape = dist.draw_shape(self.K, self.L, event)
        given = self.noise.values.get(name)
        if given is not None:
            given = given.to(dist.params[0].device)
            if dist.reparameterized and not self.wake:
                eps = dist.noise_of(given.reshape(shape)).detach()
                value = dist.rsample(eps)
            else:
                value = given.reshape(shape)
                value = value.long() if dist.enumerable else value
        elif dist.reparameterized and not self.wake:
            value = dist.rsample(dist.noise(self.noise, shape))
        else:
            with torch.no_grad():
                value = dist.rsample(dist.noise(self.noise, shape)) if dist.reparameterized else dist.sample(self.noise, shape)
        self.values[name] = value.detach()
        self.dists[name] = dist
        lp = dist.score(value, ev)
        self.sites[('guide', name)] = lp
        self.add('logQ', lp)
        if self.wake or not dist.reparameterized:
            self.add('logQScore', lp)
        return value

    def truncated_guide(self, name, dist, k, tail):
        """An address drawn from the truncated proposal (`address = topk(k, tail)`; vmm's
        `truncated` handler, src/lower/truncated.ts) instead of q(a | x): r(a) = (1 - eps) q(a) / q(top)
        on the k most probable entries, eps / (M - k) on each other one, eps from a uniform sample S
        of `tail` entries. log r(a) is the draw's density in log q and the score term (no pathwise
        gradient); the site's own record is log q(a), as vmm's guide distribution scores it."""
        table = dist.params[0]
        M = table.shape[-1]
        lifted = table.dim() > 1
        fresh = not lifted or table.shape[0] == 1  # vmm: the table has no sample plate
        lead = tuple(table.shape[:-1]) if lifted else (1, 1)
        rows = table.reshape(-1, M)
        n = self.K if fresh else 1
        p = truncated_proposal(rows, k, tail, self.noise, self.noise.values.get(f'{name}/tail'))
        given = self.noise.values.get(name)
        if given is not None:
            a = given.to(table.device).long().reshape(n, -1) if fresh else given.to(table.device).long().reshape(1, -1)
        else:
            a = draw_truncated(p, n, self.noise)
        lr = truncated_log_prob(p, a)
        shape = (self.K,) + lead[1:] if fresh else lead
        value = a.reshape(shape)
        lr = lr.reshape(shape)
        self.values[name] = value.detach()
        self.dists[name] = dist
        self.sites[('guide', name)] = dist.score(value, 0)
        self.add('logQ', lr)
        self.add('logQScore', lr)
        return value

    def relaxed_guide(self, name, dist, relax, temperature):
        """A relaxed draw of a discrete site (the `relaxed` handler): y = log of a relaxed one-hot
        [..., n], scored with the relaxation's density in log q; returns y."""
        table = dist.params[0]
        shape = dist.draw_shape(self.K, self.L, ()) + (table.shape[-1],)
        given = self.noise.values.get(name)
        if given is not None:
            g = relax.noise_of(table.detach(), temperature, given.to(table.device).reshape(shape)).detach()
        else:
            g = self.noise.gumbel(shape)
        y = relax.rsample(table, temperature, g)
        self.values[name] = y.detach()
        self.add('logQ', relax.log_prob(table, temperature, y))
        return y

    def relaxed_model(self, name, dist, relax, y, temperature):
        """The model's density of the relaxed draw y."""
        self.add('logP', relax.log_prob(dist.params[0], temperature, y))
        return y

    def model(self, name, dist, value, event):
        lp = dist.score(value, len(event))
        self.sites[('model', name)] = lp
        self.add('logP', lp)
        return value

    def term(self, name):
        """A term as [K, B] (or [E, K, B] with an enumerated site), broadcast."""
        v = self.terms.get(name)
        if v is None:
            v = torch.zeros(())
        while v.dim() < self.L:
            v = v.unsqueeze(0)
        full = (self.K, self.B) if self.L == 2 else (self.E, self.K, self.B)
        return v.expand(*full)


# The truncated address proposal (src/lower/truncated.ts, issue #26), over rows [R, M] of log q.
EPS_MIN, EPS_MAX = 0.01, 0.5


def truncated_proposal(table, k, tail, noise, tail_sample=None):
    """The proposal of each row of `table` [R, M] (log q up to a constant per row): its k largest
    entries `top` [R, k], their log q, and the tail's share eps = clamp(Zhat / (q(top) + Zhat),
    0.01, 0.5) with Zhat = (M / T) sum_{j in S} q(j) [j not in top] over S, `tail` entries drawn
    uniformly (replayed from vmm's trace when `tail_sample` [R, T] is given). Differentiable in
    `table` through the top's log q and eps."""
    R, M = table.shape
    kk = min(k, M)
    top = torch.topk(table.detach(), kk, dim=1).indices
    if kk == M:
        return {'top': top, 'logq_top': torch.gather(table, 1, top), 'eps': torch.zeros(R, device=table.device), 'size': M}
    if tail == 0:
        return {'top': top, 'logq_top': torch.gather(table, 1, top), 'eps': torch.full((R,), EPS_MIN, device=table.device), 'size': M}
    if tail_sample is not None:
        S = tail_sample.to(table.device).long().reshape(R, tail)
    else:
        S = torch.clamp((noise.uniform((R, tail)) * M).long(), max=M - 1)
    in_top = (S.unsqueeze(2) == top.unsqueeze(1)).any(2).float()
    both = torch.gather(table, 1, torch.cat([top, S], 1))
    shifted = both - both.detach().max(1, keepdim=True).values
    tail_mass = (torch.exp(shifted[:, kk:]) * (1 - in_top)).sum(1) * (M / tail)
    top_mass = torch.exp(shifted[:, :kk]).sum(1)
    eps = torch.clamp(tail_mass / (top_mass + tail_mass), EPS_MIN, EPS_MAX)
    return {'top': top, 'logq_top': both[:, :kk], 'eps': eps, 'size': M}


@torch.no_grad()
def draw_truncated(p, n, noise):
    """n draws per row from the proposal, [n, R]: a top entry by its renormalized q (Gumbel-max),
    or with probability eps the m-th entry outside the top, m uniform."""
    top, eps, M = p['top'], p['eps'], p['size']
    R, k = top.shape
    log_top = p['logq_top'] - torch.logsumexp(p['logq_top'], 1, keepdim=True)
    j = torch.argmax(log_top.unsqueeze(0) + noise.gumbel((n, R, k)), 2)
    from_top = torch.gather(top.unsqueeze(0).expand(n, R, k), 2, j.unsqueeze(2)).squeeze(2)
    rest = M - k
    if rest == 0:
        return from_top
    m = torch.clamp((noise.uniform((n, R)) * rest).long(), max=rest - 1)
    below = torch.sort(top, 1).values - torch.arange(k, device=top.device)  # entries outside the top below each top entry
    from_tail = m + (below.unsqueeze(0) <= m.unsqueeze(2)).sum(2)
    return torch.where(noise.uniform((n, R)) < eps.unsqueeze(0), from_tail, from_top)


def truncated_log_prob(p, a):
    """log r(a) of addresses a [n, R] (vmm's proposalLogProb)."""
    top, eps, M = p['top'], p['eps'], p['size']
    k = top.shape[1]
    log_top = p['logq_top'] - torch.logsumexp(p['logq_top'], 1, keepdim=True)
    hit = (a.unsqueeze(2) == top.unsqueeze(0)).float()  # [n, R, k]
    in_top = hit.sum(2) > 0
    keep = (hit * log_top.unsqueeze(0)).sum(2) + torch.log1p(-eps).unsqueeze(0)
    if M - k == 0:
        return keep
    return torch.where(in_top, keep, (torch.log(eps) - math.log(M - k)).unsqueeze(0).expand_as(keep))


def logmeanexp(l, dim=0):
    return torch.logsumexp(l, dim) - math.log(l.shape[dim])


def global_mean(x):
    """The mean of a per-rank scalar over the ranks of a distributed run (every rank's batch has
    the same size, so it is the mean over the whole batch), as a float; x itself when alone."""
    x = x.detach().float().reshape(())
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        x = x.clone()
        torch.distributed.all_reduce(x)
        x /= torch.distributed.get_world_size()
    return float(x)


@torch.no_grad()
def importance_bound(trace, inputs, K, noise, chunk=16):
    """vmm's validation bound (src/lower/objective.ts importanceBound): the K-sample importance
    bound log (1/K) sum_k p(x, z_k) / q(z_k | x) per example [B], the K draws taken `chunk` at a
    time by `trace` (the model's trace_bound: latents and addresses drawn from the guide)."""
    parts = []
    done = 0
    while done < K:
        k = min(chunk, K - done)
        t = trace(inputs, k, noise)
        parts.append(torch.logsumexp(t.term('logP') - t.term('logQ'), 0))
        done += k
    return torch.logsumexp(torch.stack(parts), 0) - math.log(K)


@torch.no_grad()
def address_kl(trace, inputs, name, noise):
    """vmm's addressKl (src/jobs/summaries.ts): the batch mean of KL(q(a | x) || uniform) =
    log M - H(q(a | x)) for the address `name`, with its ceiling log M; None where the trace does
    not draw it from a Categorical."""
    t = trace(inputs, 1, noise)
    d = t.dists.get(name)
    if d is None or not d.enumerable:
        return None
    logp = d.params[0]
    M = logp.shape[-1]
    p = torch.exp(logp)
    h = -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)  # [K = 1, B], or one value for every example
    return {'kl': float((math.log(M) - h).mean()), 'logM': math.log(M)}


# ---------------------------------------------------------------------------------------------
# safetensors, written and read by hand when the package is absent: an 8-byte little-endian
# header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
# then the raw little-endian data.


def encode_safetensors(tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().cpu().numpy().astype('<f4') if torch.is_tensor(tensors[name]) else np.asarray(tensors[name], dtype='<f4'))
        b = a.tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(a.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(',', ':')).encode('utf8')
    h += b' ' * ((8 - len(h) % 8) % 8)
    return struct.pack('<Q', len(h)) + h + b''.join(blobs)


def decode_safetensors(data):
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n].decode('utf8'))
    meta = header.pop('__metadata__', {})
    base = 8 + n
    out = {}
    for name, h in header.items():
        if h['dtype'] != 'F32':
            raise ValueError(f'{name}: dtype {h["dtype"]}, vmm writes F32')
        s, e = h['data_offsets']
        a = np.frombuffer(data[base + s: base + e], dtype='<f4').reshape(h['shape'])
        out[name] = torch.from_numpy(a.copy())
    return out, meta


def read_safetensors(path):
    with open(path, 'rb') as f:
        return decode_safetensors(f.read())


def write_checkpoint(directory, variables, step, optimizer=None, metadata=None):
    """A vmm checkpoint (src/runtime/checkpoint.ts, version 3): `checkpoint.safetensors` with the
    variables under vmm's names, the optimizer's slots as optimizer/<slot>/<name>, and a CRC-32
    of the whole file with its own ten digits written as zeros. Written atomically."""
    os.makedirs(directory, exist_ok=True)
    tensors = dict(variables)
    meta = {'format': 'vmm-checkpoint', 'version': '3', 'createdAt': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime()), 'step': str(step)}
    if optimizer is not None:
        for slot, m in optimizer['slots'].items():
            for name, t in m.items():
                tensors[f'optimizer/{slot}/{name}'] = t
        meta['optimizer'] = json.dumps({'config': optimizer['config'], 'step': optimizer['step'], 'slots': list(optimizer['slots'])}, separators=(',', ':'))
    if metadata is not None:
        meta['metadata'] = json.dumps(metadata, separators=(',', ':'))
    meta['crc32'] = '0' * 10
    data = bytearray(encode_safetensors(tensors, meta))
    at = data.find(b'"crc32":"0000000000"') + len(b'"crc32":"')
    data[at:at + 10] = str(zlib.crc32(bytes(data)) & 0xFFFFFFFF).zfill(10).encode()
    tmp = os.path.join(directory, f'.checkpoint.safetensors.{os.getpid()}.tmp')
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(directory, 'checkpoint.safetensors'))


# ---------------------------------------------------------------------------------------------
# The optimizers as vmm runs them (src/runtime/optimizer.ts): Adam (Kingma & Ba's Algorithm 1, eps
# added to sqrt(v_hat)) and SGD (`sgd(lr: ..)`: theta -= lr g), each with optional clipping of all
# gradients together by their global L2 norm (Pascanu et al. 2013): g *= clip / max(||g||, clip).


def clipped(params, clip):
    """The gradients by name (zero where a parameter has none), clipped to the global norm `clip`."""
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in params.items()}
    if clip is not None:
        # Summed in vmm's order (sorted names).
        norm = math.sqrt(sum(float((grads[n] * grads[n]).sum()) for n in sorted(grads)))
        scale = clip / max(norm, clip)
        grads = {n: g * scale for n, g in grads.items()}
    return grads


def make_optimizer(config, params):
    """The optimizer of a train block's `optimizer = adam(lr: .., clip: ..)` or `sgd(lr: .., clip: ..)`."""
    if config['kind'] == 'adam':
        return Adam(params, config['lr'], clip=config.get('clip'))
    if config['kind'] == 'sgd':
        return SGD(params, config['lr'], clip=config.get('clip'))
    raise SystemExit(f"optimizer {config['kind']}: the export trains with adam or sgd")


class SGD:
    def __init__(self, params, lr, clip=None):
        self.params = params
        self.lr, self.clip = lr, clip
        self.step_count = 0

    @torch.no_grad()
    def step(self):
        grads = clipped(self.params, self.clip)
        self.step_count += 1
        for n, p in self.params.items():
            p.sub_(self.lr * grads[n])

    def state(self):
        return {
            'config': {'kind': 'sgd', 'lr': self.lr, 'beta1': 0.9, 'beta2': 0.999, 'eps': 1e-8, 'momentum': 0, 'clipNorm': self.clip},
            'step': self.step_count,
            'slots': {},
        }


class Adam:
    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8, clip=None):
        self.params = params  # name -> tensor (requires_grad)
        self.lr, self.beta1, self.beta2, self.eps, self.clip = lr, beta1, beta2, eps, clip
        self.step_count = 0
        self.m = {n: torch.zeros_like(p) for n, p in params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in params.items()}

    @torch.no_grad()
    def step(self):
        grads = clipped(self.params, self.clip)
        self.step_count += 1
        t = self.step_count
        step_size = self.lr / (1 - self.beta1 ** t)
        sqrt_bc2 = math.sqrt(1 - self.beta2 ** t)
        for n, p in self.params.items():
            g = grads[n]
            self.m[n].mul_(self.beta1).add_(g, alpha=1 - self.beta1)
            self.v[n].mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            p.sub_(step_size * self.m[n] / (self.v[n].sqrt() / sqrt_bc2 + self.eps))

    def state(self):
        return {
            'config': {'kind': 'adam', 'lr': self.lr, 'beta1': self.beta1, 'beta2': self.beta2, 'eps': self.eps, 'momentum': 0, 'clipNorm': self.clip},
            'step': self.step_count,
            'slots': {'m': dict(self.m), 'v': dict(self.v)},
        }


# ---------------------------------------------------------------------------------------------
# Data: the image set vmm trains on, written by `vmm export pytorch` into data/<set>.npz
# (images uint8 [N, D], labels int32, train: the training split's image indices with vmm's
# validation images held out, valid: those validation images, max_value), or a user's .npy / .npz
# of images.


def load_images(path):
    z = np.load(path)
    valid = None
    if isinstance(z, np.ndarray):
        images = z
        labels = None
        train = np.arange(len(images))
        max_value = 255 if images.max() > 1 else 1
    else:
        images = z['images'] if 'images' in z.files else z[z.files[0]]
        labels = z['labels'] if 'labels' in z.files else (z['y'] if 'y' in z.files else None)
        train = z['train'] if 'train' in z.files else np.arange(len(images))
        valid = z['valid'] if 'valid' in z.files else None
        max_value = int(z['max_value']) if 'max_value' in z.files else (255 if images.max() > 1 else 1)
    images = images.reshape(len(images), -1)
    if images.dtype != np.uint8:
        images = (np.clip(images, 0, 1) * 255).astype(np.uint8)
        max_value = 255
    return {
        'images': images, 'labels': labels, 'max_value': max_value,
        'train': np.asarray(train, dtype=np.int64), 'valid': None if valid is None else np.asarray(valid, dtype=np.int64),
    }


class Stream:
    """Minibatches of images, or few-shot episodes (vmm's EpisodeSampler: per episode `classes`
    distinct classes, `shots` images of each in memory in random order, the target another image
    of one of them; with min_shots, a batch's shots drawn from min_shots .. shots), binarized (pixel ~ Bernoulli(v / max_value)), from the images of `pool`
    ('train', or 'valid': vmm's held-out validation images). `next(n)` gives the model's inputs by
    name: `names` = {'data': .., 'memory': ..}. Each rank of a distributed run draws its own
    stream (seed + rank). The same images as vmm's, not the same draws."""

    def __init__(self, data, seed, names, classes=0, shots=0, distractors=0, pool='train', min_shots=None):
        self.images = torch.from_numpy(data['images'])
        self.max_value = data['max_value']
        self.pool = data[pool]
        if self.pool is None or len(self.pool) == 0:
            raise SystemExit(f'the data has no {pool} images')
        self.names = names
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.classes, self.shots, self.distractors = classes, shots, distractors
        self.min_shots = min_shots or shots  # each batch draws its shots from min_shots .. shots
        if classes:
            labels = data['labels']
            if labels is None:
                raise SystemExit('the data has no labels, so it cannot make few-shot episodes')
            by = {}
            for i in self.pool:
                by.setdefault(int(labels[i]), []).append(int(i))
            self.by_class = [np.array(v) for v in by.values() if len(v) >= shots + 1]
            if len(self.by_class) < classes:
                raise SystemExit(f'an episode needs {classes} classes with {shots + 1} images each')

    def binarize(self, u8):
        p = u8.float() / self.max_value
        return (torch.rand(p.shape, generator=self.gen) < p).float()

    def next(self, n):
        if not self.classes:
            idx = self.rng.choice(self.pool, size=n, replace=True)
            return {self.names['data']: self.binarize(self.images[idx])}
        C, S = self.classes, self.shots
        if self.min_shots < S:
            S = int(self.rng.integers(self.min_shots, S + 1))
        targets, memory = [], []
        for _ in range(n):
            ways = self.rng.choice(len(self.by_class), size=C, replace=False)
            tw = self.rng.integers(C)
            slots = []
            for w, c in enumerate(ways):
                imgs = self.by_class[c]
                pick = self.rng.choice(len(imgs), size=S + 1 if w == tw else S, replace=False)
                if w == tw:
                    targets.append(int(imgs[pick[-1]]))
                    pick = pick[:-1]
                slots.extend(int(imgs[p]) for p in pick)
            if self.distractors:
                slots.extend(int(i) for i in self.rng.choice(self.pool, size=self.distractors, replace=False))
            self.rng.shuffle(slots)
            memory.append(slots)
        x = self.binarize(self.images[targets])
        mem = self.binarize(self.images[np.array(memory).reshape(-1)]).reshape(n, len(memory[0]), -1)
        return {self.names['data']: x, self.names['memory']: mem}


# ---------------------------------------------------------------------------------------------
# The data sets vmm generates (`dataset = synthetic`, `dataset = recall`), drawn from vmm's own
# generator: xoshiro128** seeded through splitmix32 (src/random/rng.ts), ported number for number,
# so a stream opened with vmm's seed and stream name gives vmm's very batches
# (src/data/synthetic.ts, src/data/synthetic_recall.ts, src/data/sets/recall.ts).

M32 = 0xFFFFFFFF


def mix32(x):
    """The murmur3 32-bit finalizer."""
    h = x & M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h


def hash_seed(*parts):
    """vmm's hashSeed: seed parts (numbers or strings) into one uint32."""
    h = 0x9E3779B9

    def absorb(w):
        nonlocal h
        h = mix32(((h ^ mix32(w & M32)) + 0x632BE5AB) & M32)

    for part in parts:
        if isinstance(part, str):
            absorb(0x5EED5)
            for ch in part:
                absorb(ord(ch))
            absorb(len(part))
        else:
            if not math.isfinite(part):
                raise ValueError(f'hash_seed: seed must be finite, got {part}')
            absorb(int(math.trunc(part)) & M32)
            absorb(math.floor(part / 4294967296) & M32)
            absorb(math.floor((part - math.floor(part)) * 4294967296) & M32)
    return h


def _xoshiro_step(s):
    """One step of xoshiro128**'s state (four uint32 words), without its output."""
    s0, s1, s2, s3 = s
    t = (s1 << 9) & M32
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    return [s0, s1, s2, ((s3 << 11) | (s3 >> 21)) & M32]


# Numbers are made LANES x LANE_STEPS at a time: LANES copies of the generator, lane j started
# j x LANE_STEPS steps ahead (the state update is linear over GF(2), so "ahead" is a 128 x 128
# bit matrix, a power of the one-step matrix T), advanced together by numpy; lane j's outputs are
# the stream's [j x LANE_STEPS, (j + 1) x LANE_STEPS). The same numbers as one step at a time,
# some 20 times faster than a Python loop.
LANES, LANE_STEPS, GROUPS = 2048, 128, 32
_JUMPS = {}


def _bits_of(words):
    return np.array([(w >> b) & 1 for w in words for b in range(32)], dtype=np.int64)


def _jumps():
    """T^LANE_STEPS (one lane ahead) and T^(LANE_STEPS x LANES / GROUPS) (one group of lanes ahead)."""
    if not _JUMPS:
        # T's columns: the step applied to each basis state.
        T = np.zeros((128, 128), dtype=np.int64)
        for i in range(128):
            e = [0, 0, 0, 0]
            e[i // 32] = 1 << (i % 32)
            T[:, i] = _bits_of(_xoshiro_step(e))

        def power(P, n):
            J = np.eye(128, dtype=np.int64)
            while n:
                if n & 1:
                    J = (J @ P) & 1
                P = (P @ P) & 1
                n >>= 1
            return J

        lane = power(T, LANE_STEPS)
        # As floats: BLAS multiplies them (sums of at most 128 ones are exact), then mod 2.
        _JUMPS['lane'] = lane.astype(np.float64)
        _JUMPS['group'] = power(lane, LANES // GROUPS).astype(np.float64)
    return _JUMPS['lane'], _JUMPS['group']


def _lane_starts(words):
    """The states of the LANES lanes, [LANES, 4] words: the first lane of each group by group
    jumps, then every group's next lane together."""
    lane, group = _jumps()
    v = _bits_of(words).astype(np.float64)
    firsts = []
    for _ in range(GROUPS):
        firsts.append(v)
        v = (group @ v) % 2
    per = LANES // GROUPS
    states = np.empty((GROUPS, per, 128), dtype=np.float64)
    V = np.stack(firsts)
    lane_t = np.ascontiguousarray(lane.T)
    for i in range(per):
        states[:, i] = V
        V = (V @ lane_t) % 2
    bits = states.reshape(LANES, 4, 32).astype(np.uint64)
    return (bits << np.arange(32, dtype=np.uint64)).sum(2)


class Rng:
    """vmm's generator (src/random/rng.ts): xoshiro128** (Blackman & Vigna 2018,
    arXiv:1805.01407), the state seeded by splitmix32 from hash_seed(seed, stream)."""

    def __init__(self, seed=0, stream=None):
        st = hash_seed(seed) if stream is None else hash_seed(seed, stream)
        words = []
        for _ in range(4):
            st = (st + 0x9E3779B9) & M32
            z = st
            z = ((z ^ (z >> 16)) * 0x21F0AAAD) & M32
            z = ((z ^ (z >> 15)) * 0x735A2D97) & M32
            z ^= z >> 15
            words.append(z)
        if not any(words):
            words[0] = 0x9E3779B9
        self.s = words  # the state after the numbers made so far
        self.buf = np.zeros(0, dtype=np.uint64)  # made, not yet handed out
        self.at = 0
        self.spare = None

    def _refill(self):
        w = _lane_starts(self.s)
        s0, s1, s2, s3 = (w[:, i].copy() for i in range(4))
        out = np.empty((LANES, LANE_STEPS), dtype=np.uint64)
        m32 = np.uint64(M32)
        for i in range(LANE_STEPS):
            m = (s1 * np.uint64(5)) & m32
            out[:, i] = ((((m << np.uint64(7)) | (m >> np.uint64(25))) & m32) * np.uint64(9)) & m32
            t = (s1 << np.uint64(9)) & m32
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = ((s3 << np.uint64(11)) | (s3 >> np.uint64(21))) & m32
        self.s = [int(s0[-1]), int(s1[-1]), int(s2[-1]), int(s3[-1])]
        self.buf = np.concatenate([self.buf[self.at:], out.reshape(-1)])
        self.at = 0

    def peek(self, n):
        """The next n outputs as a numpy array, without handing them out."""
        while len(self.buf) - self.at < n:
            self._refill()
        return self.buf[self.at:self.at + n]

    def take(self, n):
        """The next n uniform uint32s, handed out (a numpy array)."""
        out = self.peek(n)
        self.at += n
        return out

    def uint32s(self, n):
        """n uniform uint32s (the generator's next n outputs), as Python ints."""
        return [int(u) for u in self.take(n)]

    def next(self):
        """A uniform float in [0, 1) with 32 random bits."""
        return int(self.take(1)[0]) * 2.0 ** -32

    def bits(self, n):
        """n draws of `next() < 0.5 ? 1 : 0`, float32."""
        return (self.take(n) < 0x80000000).astype(np.float32)

    def int(self, n):
        """A uniform integer in [0, n) by rejection (no modulo bias)."""
        limit = 4294967296 - 4294967296 % n
        while True:
            u = int(self.take(1)[0])
            if u < limit:
                return u % n

    def normal(self):
        """A standard normal draw (Marsaglia's polar method, the second value kept for the next call)."""
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        while True:
            u = 2 * self.next() - 1
            v = 2 * self.next() - 1
            s = u * u + v * v
            if 0 < s < 1:
                f = math.sqrt(-2 * math.log(s) / s)
                self.spare = v * f
                return u * f

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = self.int(i + 1)
            a[i], a[j] = a[j], a[i]
        return a

    def sample(self, n, k):
        """k distinct integers of [0, n) in random order (Floyd's algorithm when k is small)."""
        if k * 4 < n:
            seen = set()
            out = []
            for j in range(n - k, n):
                t = self.int(j + 1)
                v = j if t in seen else t
                seen.add(v)
                out.append(v)
            return self.shuffle(out)
        p = list(range(n))
        out = []
        for i in range(k):
            j = i + self.int(n - i)
            p[i], p[j] = p[j], p[i]
            out.append(p[i])
        return out


class SyntheticStream:
    """`dataset = synthetic` (src/data/synthetic.ts): a mixture of `components` isotropic Gaussians
    (std 0.5) whose means lie on a circle of radius 3 in the first two coordinates."""

    def __init__(self, spec, seed, stream='train', components=3, std=0.5):
        D = spec['dim']
        self.name, self.D, self.K, self.std = spec['data'], D, components, std
        means = np.zeros((components, D), dtype=np.float32)
        for k in range(components):
            means[k, 0] = 3 * math.cos(2 * math.pi * k / components)
            if D > 1:
                means[k, 1] = 3 * math.sin(2 * math.pi * k / components)
        self.means = means.astype(np.float64)
        self.rng = Rng(seed, f'synthetic-{stream}')

    def next(self, n):
        out = np.zeros((n, self.D), dtype=np.float64)
        for i in range(n):
            k = self.rng.int(self.K)
            for d in range(self.D):
                out[i, d] = self.means[k, d] + self.std * self.rng.normal()
        return {self.name: torch.from_numpy(out.astype(np.float32))}


class RecallStream:
    """`dataset = recall` (src/data/synthetic_recall.ts, src/data/sets/recall.ts): episodes of
    N = classes x shots pairs of distinct random K-bit keys and random V-bit values; the query is
    one stored key (padded with zeros to the query's width), the target its value; a `real` memory
    gets bits as -1 / +1."""

    def __init__(self, spec, seed, stream='train'):
        self.spec = spec
        self.rng = Rng(seed, f'recall-{stream}')

    def next(self, B):
        r, rng = self.spec, self.rng
        K, V, N = r['keyBits'], r['valueBits'], r['pairs']
        E = K + V
        pairs = np.zeros((B, N, E), dtype=np.float32)
        keys = np.zeros((B, K), dtype=np.float32)
        values = np.zeros((B, V), dtype=np.float32)
        shifts = np.arange(K, dtype=np.int64) if K <= 30 else None
        for b in range(B):
            if K <= 30:
                # N distinct codes; each pair's V value bits follow one another in the stream.
                codes = np.array(rng.sample(2 ** K, N), dtype=np.int64)
                pairs[b, :, :K] = (codes[:, None] >> shifts) & 1
                pairs[b, :, K:] = rng.bits(N * V).reshape(N, V)
            else:
                # K key bits then V value bits per pair, a repeated key drawn again: read at once
                # when no key repeats (almost always), else pair by pair.
                block = (rng.peek(N * E) < 0x80000000).reshape(N, E)
                if len({row.tobytes() for row in block[:, :K]}) == N:
                    rng.take(N * E)
                    pairs[b] = block
                else:
                    seen = set()
                    for n in range(N):
                        while True:
                            key = rng.bits(K)
                            if key.tobytes() not in seen:
                                seen.add(key.tobytes())
                                break
                        pairs[b, n, :K] = key
                        pairs[b, n, K:] = rng.bits(V)
            q = rng.int(N)
            keys[b] = pairs[b, q, :K]
            values[b] = pairs[b, q, K:]
        if r['signed']:
            pairs = 2 * pairs - 1
            keys = 2 * keys - 1
        query = np.zeros((B, r['queryWidth']), dtype=np.float32)
        query[:, :K] = keys
        return {r['key']: torch.from_numpy(query), r['value']: torch.from_numpy(values), r['memory']: torch.from_numpy(pairs)}


def generated_stream(spec, seed, stream='train'):
    """The stream of a generated data set described by export.json's `data` (`vmm export pytorch`)."""
    if spec['generated'] == 'synthetic':
        return SyntheticStream(spec, seed, stream)
    if spec['generated'] == 'recall':
        return RecallStream(spec, seed, stream)
    raise SystemExit(f"the data set {spec['generated']} is not generated by this runtime")


# ---------------------------------------------------------------------------------------------
# The replay of a vmm trace (test/export/): same weights, inputs and site values, so that the
# per-site log-densities, the bound and the gradients can be compared with vmm's.


def replay(model, case_dir, out_path, estimate):
    weights, _ = read_safetensors(os.path.join(case_dir, 'weights.safetensors'))
    inputs, _ = read_safetensors(os.path.join(case_dir, 'inputs.safetensors'))
    values, _ = read_safetensors(os.path.join(case_dir, 'values.safetensors'))
    with open(os.path.join(case_dir, 'case.json')) as f:
        case = json.load(f)
    model.load_vmm(weights)
    noise = Noise(values=values)
    t = model.trace(inputs, case['k'], noise)
    r = estimate(t, {'steps': 0, 'runningMean': None})
    loss = -r['surrogate'] + (r.get('extra_loss') if r.get('extra_loss') is not None else 0)
    loss.backward()
    out = {'bound': r['bound'].detach()}
    full = tuple(t.term('logP').shape)
    for (phase, name), lp in t.sites.items():
        v = lp.detach()
        while v.dim() < t.L:
            v = v.unsqueeze(0)
        out[f'site/{phase}/{name}'] = v.expand(*full).contiguous()
    for term in ('logQ', 'logQScore'):
        out[f'site/term/{term}'] = t.term(term).detach().expand(*full).contiguous()
    for vmm_name, p in model.vmm_parameters().items():
        out[f'grad/{vmm_name}'] = p.grad if p.grad is not None else torch.zeros_like(p)
    out['surrogate'] = r['surrogate'].detach().reshape(1)
    with open(out_path, 'wb') as f:
        f.write(encode_safetensors({k: v.float() for k, v in out.items()}))
