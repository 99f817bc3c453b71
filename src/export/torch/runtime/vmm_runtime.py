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
    uniform in [-limit, limit] (Glorot, or He before a relu / elu), biases zero, params
    normal(0, std) or zero. The same distribution, not vmm's draws: --init RUN loads those."""
    kind, a = init
    if kind == 'uniform':
        return (torch.rand(shape, generator=generator) * 2 - 1) * a
    if kind == 'normal':
        return torch.randn(shape, generator=generator) * a
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
        lp = dist.score(value, ev)
        self.sites[('guide', name)] = lp
        self.add('logQ', lp)
        if self.wake or not dist.reparameterized:
            self.add('logQScore', lp)
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


def logmeanexp(l, dim=0):
    return torch.logsumexp(l, dim) - math.log(l.shape[dim])


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
# Adam as vmm runs it (src/runtime/optimizer.ts: Kingma & Ba's Algorithm 1, eps added to
# sqrt(v_hat), optional clipping of all gradients together by their global L2 norm).


class Adam:
    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8, clip=None):
        self.params = params  # name -> tensor (requires_grad)
        self.lr, self.beta1, self.beta2, self.eps, self.clip = lr, beta1, beta2, eps, clip
        self.step_count = 0
        self.m = {n: torch.zeros_like(p) for n, p in params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in params.items()}

    @torch.no_grad()
    def step(self):
        grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in self.params.items()}
        if self.clip is not None:
            norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
            scale = self.clip / max(norm, self.clip)
            grads = {n: g * scale for n, g in grads.items()}
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
# validation images held out, max_value), or a user's .npy / .npz of images.


def load_images(path):
    z = np.load(path)
    if isinstance(z, np.ndarray):
        images = z
        labels = None
        train = np.arange(len(images))
        max_value = 255 if images.max() > 1 else 1
    else:
        images = z['images'] if 'images' in z.files else z[z.files[0]]
        labels = z['labels'] if 'labels' in z.files else (z['y'] if 'y' in z.files else None)
        train = z['train'] if 'train' in z.files else np.arange(len(images))
        max_value = int(z['max_value']) if 'max_value' in z.files else (255 if images.max() > 1 else 1)
    images = images.reshape(len(images), -1)
    if images.dtype != np.uint8:
        images = (np.clip(images, 0, 1) * 255).astype(np.uint8)
        max_value = 255
    return {'images': images, 'labels': labels, 'train': np.asarray(train, dtype=np.int64), 'max_value': max_value}


class Stream:
    """Minibatches of images, or few-shot episodes (vmm's EpisodeSampler: per episode `classes`
    distinct classes, `shots` images of each in memory in random order, the target another image
    of one of them), dynamically binarized (pixel ~ Bernoulli(v / max_value)). Each rank of a
    distributed run draws its own stream (seed + rank)."""

    def __init__(self, data, seed, classes=0, shots=0, distractors=0):
        self.images = torch.from_numpy(data['images'])
        self.max_value = data['max_value']
        self.train = data['train']
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.classes, self.shots, self.distractors = classes, shots, distractors
        if classes:
            labels = data['labels']
            if labels is None:
                raise SystemExit('the data has no labels, so it cannot make few-shot episodes')
            by = {}
            for i in self.train:
                by.setdefault(int(labels[i]), []).append(int(i))
            self.by_class = [np.array(v) for v in by.values() if len(v) >= shots + 1]
            if len(self.by_class) < classes:
                raise SystemExit(f'an episode needs {classes} classes with {shots + 1} images each')

    def binarize(self, u8):
        p = u8.float() / self.max_value
        return (torch.rand(p.shape, generator=self.gen) < p).float()

    def next(self, n):
        if not self.classes:
            idx = self.rng.choice(self.train, size=n, replace=True)
            return self.binarize(self.images[idx]), None
        C, S = self.classes, self.shots
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
                slots.extend(int(i) for i in self.rng.choice(self.train, size=self.distractors, replace=False))
            self.rng.shuffle(slots)
            memory.append(slots)
        x = self.binarize(self.images[targets])
        mem = self.binarize(self.images[np.array(memory).reshape(-1)]).reshape(n, len(memory[0]), -1)
        return x, mem


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
    for vmm_name, p in model.vmm_parameters().items():
        out[f'grad/{vmm_name}'] = p.grad if p.grad is not None else torch.zeros_like(p)
    out['surrogate'] = r['surrogate'].detach().reshape(1)
    with open(out_path, 'wb') as f:
        f.write(encode_safetensors({k: v.float() for k, v in out.items()}))
