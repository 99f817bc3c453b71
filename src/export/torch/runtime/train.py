"""Trains an exported vmm model (docs/scaling.md); fixed file of `vmm export pytorch`.

    python train.py --steps N --out RUN [--data FILE] [--batch B] [--device cuda|cpu]
                    [--init RUN] [--seed S] [--k K] [--log-every N] [--checkpoint-every N]
                    [--valid-every N] [--valid-size N]
    torchrun --nproc_per_node G train.py ...   (one process per GPU, or per CPU share with gloo)
    python3 -m torch.distributed.run --nproc_per_node G --redirects 1 --tee 1 train.py ...

Alone or under torchrun (DDP: every rank draws its own episodes, seed + rank; the gradients of
each rank's batch of B / world examples are averaged by an all-reduce, which is the gradient of
the whole batch; rank 0 writes the run). RUN is a vmm run folder: config.json, model.vmm,
metrics.jsonl (train records, and validation records as `vmm train` writes them), checkpoint/ and
final/ with vmm's names and layouts, so `vmm eval RUN`, `vmm sample`, `vmm classify` and
`vmm compare` read it. --init RUN starts from a vmm run's weights (final/, else checkpoint/), or
from a .safetensors file of vmm's names (saveWeights).

The data: the image set of data/ (or --data FILE); a generated set (`synthetic`, `recall`) is
drawn with vmm's own generator (vmm_runtime.Rng), so one process with --seed S trains on the very
batches of `vmm train --seed S`.

Debian's torch 1.13 on Python 3.11 cannot parse torchrun's own --redirects / --tee defaults;
there, start it as `python3 -m torch.distributed.run --redirects 1 --tee 1 ...` (docs/scaling.md).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as M  # noqa: E402
import vmm_runtime as rt  # noqa: E402

# Steps in a row whose gradient may be non-finite before the run stops (src/jobs/train_loop.ts).
MAX_SKIPPED_IN_A_ROW = 5

with open(os.path.join(HERE, 'export.json')) as f:
    EXPORT = json.load(f)


def parse():
    steps = M.TRAIN['steps']
    p = argparse.ArgumentParser(description=f'train the exported vmm model {M.NAME}')
    p.add_argument('--steps', type=int, default=steps)
    p.add_argument('--out', required=True, help='the vmm run folder to write')
    p.add_argument('--data', help='an .npz (images, labels, train, valid) or .npy of images; default: the data/ of the export, or the generated set')
    p.add_argument('--batch', type=int, default=M.TRAIN['batch'], help='the global batch (split over the ranks)')
    p.add_argument('--k', type=int, default=M.ESTIMATOR['k'])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--init', help='the weights to start from: a vmm run folder (final/, else checkpoint/) or a .safetensors file (saveWeights)')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--log-every', type=int, help="steps between train records (default: vmm's, steps / 20 up to 100)")
    p.add_argument('--checkpoint-every', type=int, default=1000)
    p.add_argument('--valid-every', type=int, help="steps between validations (default: vmm's, steps / 20 up to 500; 0: none)")
    p.add_argument('--valid-size', type=int, default=256, help='held-out examples per validation')
    a = p.parse_args()
    # vmm's cadence (src/jobs/train_loop.ts, src/jobs/run_config.ts) unless told.
    if a.log_every is None:
        a.log_every = max(1, min(100, a.steps // 20))
    if a.valid_every is None:
        a.valid_every = max(1, min(500, a.steps // 20))
    return a


def default_data():
    folder = os.path.join(HERE, 'data')
    files = sorted(f for f in os.listdir(folder) if f.endswith('.npz')) if os.path.isdir(folder) else []
    if not files:
        raise SystemExit('no data: pass --data FILE (.npz or .npy), or export with the data set (vmm export pytorch without --no-data-set)')
    return os.path.join(folder, files[0])


def weights_of(run):
    if os.path.isfile(run):
        tensors, _ = rt.read_safetensors(run)
        return {n: t for n, t in tensors.items() if not n.startswith('optimizer/')}
    for sub in ('final', 'checkpoint'):
        f = os.path.join(run, sub, 'checkpoint.safetensors')
        if os.path.exists(f):
            tensors, _ = rt.read_safetensors(f)
            return {n: t for n, t in tensors.items() if not n.startswith('optimizer/')}
    raise SystemExit(f'{run} has no weights (no checkpoint in final/ or checkpoint/)')


def open_data(a, rank, world):
    """The training stream, a function giving the fixed validation batches (None: no held-out
    data), and the data's name for the header."""
    binding = EXPORT.get('data') or {}
    ep = M.TRAIN['episodes']
    memories = M.INPUTS['memories']
    valid_batch = min(a.batch, 64)
    if 'generated' in binding and not a.data:
        # vmm's streams: 'train' (rank 0; the others their own), 'valid' for validation.
        train = rt.generated_stream(binding, a.seed, 'train' if rank == 0 else f'train-rank{rank}')

        def valid():
            v = rt.generated_stream(binding, a.seed, 'valid')
            return [v.next(min(valid_batch, a.valid_size - i)) for i in range(0, a.valid_size, valid_batch)]

        return train, valid, f"{binding['generated']} (generated with vmm's generator, seed {a.seed})"
    path = a.data or default_data()
    data = rt.load_images(path)
    names = {'data': binding.get('data', M.INPUTS['data'][0]), 'memory': binding.get('memory', memories[0] if memories else None)}
    episodes = (ep['classes'], ep['shots'], ep['distractors']) if memories else ()
    # min_shots: each training batch draws its shots from min_shots .. shots; validation keeps shots.
    train = rt.Stream(data, a.seed * 1000 + rank, names, *episodes, min_shots=ep.get('minShots') if memories else None)
    if data['valid'] is None or len(data['valid']) == 0:
        return train, None, path

    def valid():
        # Fixed: the same examples and binarization at every validation.
        v = rt.Stream(data, a.seed + 7919, names, *episodes, pool='valid')
        return [v.next(min(valid_batch, a.valid_size - i)) for i in range(0, a.valid_size, valid_batch)]

    return train, valid, path


def validate(model, batches, k, seed, device):
    """vmm's validation record: the mean K-sample bound (K = the training K, at least 1) on the
    fixed held-out batches, and the address's KL from uniform on the first batch."""
    noise = rt.Noise(torch.Generator(device=device).manual_seed(seed + 1), device)
    total, n = 0.0, 0
    for batch in batches:
        inputs = {name: v.to(device) for name, v in batch.items()}
        b = rt.importance_bound(model.trace_bound, inputs, max(k, 1), noise)
        total += float(b.sum())
        n += b.numel()
    rec = {'kind': 'valid', 'bound': total / n}
    if M.ADDRESS is not None and batches:
        first = {name: v.to(device) for name, v in batches[0].items()}
        kl = rt.address_kl(model.trace_bound, first, M.ADDRESS, rt.Noise(torch.Generator(device=device).manual_seed(seed + 2), device))
        if kl is not None:
            rec['addressKl'] = kl['kl']
            rec['addressKlCeiling'] = kl['logM']
    return rec


def main():
    a = parse()
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local = int(os.environ.get('LOCAL_RANK', '0'))
    device = torch.device(f'cuda:{local}' if a.device == 'cuda' and world > 1 else a.device)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    if a.batch % world:
        raise SystemExit(f'--batch {a.batch} does not split over {world} processes')
    model = M.Model(a.seed).to(device)
    if a.init:
        model.load_vmm(weights_of(a.init))
    params = model.vmm_parameters()
    if world > 1:
        for p in params.values():
            dist.broadcast(p.data, 0)
    ep = M.TRAIN['episodes']
    stream, valid_of, data_name = open_data(a, rank, world)
    valid = valid_of() if rank == 0 and valid_of is not None and a.valid_every > 0 else None
    gen = torch.Generator(device=device).manual_seed(a.seed * 7919 + rank)
    noise = rt.Noise(gen, device)
    opt = rt.make_optimizer(M.TRAIN['optimizer'], params)
    state = {'steps': 0, 'runningMean': None}
    b = a.batch // world
    out = a.out
    train = dict(M.TRAIN, steps=a.steps, batch=a.batch, estimator=dict(M.ESTIMATOR, k=a.k))
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(HERE, 'model.vmm')) as f:
            source = f.read()
        config = {
            'version': 1, 'modelPath': os.path.join(HERE, 'model.vmm'), 'source': source, 'train': train,
            'data': {'dataset': M.TRAIN['dataset'], 'seed': a.seed, 'classes': ep['classes'], 'shots': ep['shots'], 'distractors': ep['distractors']},
            'seed': a.seed, 'checkpointEvery': a.checkpoint_every, 'validEvery': a.valid_every or max(1, min(500, a.steps // 20)), 'validSize': a.valid_size,
            'createdAt': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime()),
            'exported': {'by': 'vmm export pytorch', 'world': world, 'device': str(device.type)},
        }
        with open(os.path.join(out, 'config.json'), 'w') as f:
            json.dump(config, f, indent=2)
        with open(os.path.join(out, 'model.vmm'), 'w') as f:
            f.write(source)
        metrics = open(os.path.join(out, 'metrics.jsonl'), 'w')

        def record(rec):
            metrics.write(json.dumps(rec) + '\n')
            metrics.flush()

        # Only rank 0 prints (under torchrun --tee 1 its lines come prefixed [default0]:).
        per_rank = f' = {world} processes x {b} ({dist.get_backend()})' if world > 1 else ''
        print(f"training {M.NAME} ({M.ESTIMATOR['kind']}, k = {a.k}, {M.TRAIN['optimizer']['kind']}) for {a.steps} steps on {device}: "
              f"batch {a.batch}{per_rank}, data {data_name}, into {out}", flush=True)
    t0 = time.time()
    skipped_in_a_row = 0
    ema = None
    valid_bound = None
    for step in range(1, a.steps + 1):
        t_step = time.time()
        inputs = {name: v.to(device) for name, v in stream.next(b).items()}
        r = M.forward_estimate(model, inputs, a.k, noise, state)
        loss = -r['surrogate'] + (r['extra_loss'] if r.get('extra_loss') is not None else 0)
        for p in params.values():
            p.grad = None
        loss.backward()
        # The step's figures over the whole batch (vmm's bound is the batch mean, as here).
        figures = torch.stack([r['bound'].detach().mean(), loss.detach()]).float()
        if world > 1:
            for p in params.values():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= world
            dist.all_reduce(figures)
            figures /= world
        # Whether every gradient entry is finite (after the all-reduce, so every rank agrees), read
        # back with the figures in one transfer.
        grads = {name: p.grad for name, p in params.items() if p.grad is not None}
        grad_ok = torch.stack([torch.isfinite(g).all() for g in grads.values()]).all() if grads else torch.tensor(True)
        bound, loss_value, grads_finite = torch.cat([figures, grad_ok.float().reshape(1).to(figures.device)]).tolist()
        if not (math.isfinite(bound) and math.isfinite(loss_value)):
            # As vmm: the step is not applied, the record says so, training stops (every rank alike).
            if rank == 0:
                record({'kind': 'error', 'step': step, 'loss': loss_value, 'bound': bound})
                metrics.close()
            raise SystemExit(f'the loss became {loss_value} (bound {bound}) at step {step}; training stopped (try a lower learning rate)')
        if grads_finite:
            opt.step()
            skipped_in_a_row = 0
        else:
            # As vmm (src/runtime/trainer.ts): a gradient that is not finite though the loss is
            # (a log of an entry that underflowed to 0) is not applied; the record names the
            # variables; MAX_SKIPPED_IN_A_ROW such steps in a row stop the run.
            bad = sorted(name for name, g in grads.items() if not bool(torch.isfinite(g).all()))
            skipped_in_a_row += 1
            which = ', '.join(bad[:4]) + (f' and {len(bad) - 4} more' if len(bad) > 4 else '')
            if rank == 0:
                record({'kind': 'skipped', 'step': step, 'loss': loss_value, 'bound': bound, 'variables': bad})
            if skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
                if rank == 0:
                    metrics.close()
                raise SystemExit(f'the gradient of {which} was not finite at {skipped_in_a_row} steps in a row (to step {step}), '
                                 'though the loss was; training stopped (a log, a division or a sqrt whose argument reaches 0 exactly?)')
            if rank == 0:
                print(f'step {step}: the gradient of {which} is not finite (the loss is {loss_value:.2f}); the update was skipped', flush=True)
        state = r['state']
        ema = bound if ema is None else 0.95 * ema + 0.05 * bound
        if rank == 0:
            now = time.time()
            logged = step % a.log_every == 0 or step == a.steps
            rate = step / (now - t0)
            if logged:
                record({'kind': 'train', 'step': step, 'bound': bound, 'boundEma': ema, 'loss': loss_value, 'ms': 1000 * (now - t_step), 'stepsPerSec': rate})
            if valid and (step % a.valid_every == 0 or step == a.steps):
                rec = validate(model, valid, a.k, a.seed, device)
                valid_bound = rec['bound']
                record({'kind': 'valid', 'step': step, **rec})
            if logged:
                print(f'step {step}/{a.steps}  {rate:.1f} steps/s  bound {ema:.2f}' + (f'  valid {valid_bound:.2f}' if valid_bound is not None else ''), flush=True)
            if step % a.checkpoint_every == 0 and step < a.steps:
                rt.write_checkpoint(os.path.join(out, 'checkpoint'), params, step, opt.state())
    if rank == 0:
        rt.write_checkpoint(os.path.join(out, 'final'), params, a.steps)
        seconds = time.time() - t0
        # The fields of vmm's (src/jobs/train_loop.ts LoopResult), which vmm compare reads.
        summary = {'steps': a.steps, 'interrupted': False, 'budgetSpent': False, 'trainedSeconds': seconds, 'lastBound': bound,
                   **({'validBound': valid_bound} if valid_bound is not None else {}), 'msPerStep': 1000 * seconds / a.steps,
                   'wallSeconds': seconds, 'finishedAt': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime()), 'world': world}
        with open(os.path.join(out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=2)
        metrics.close()
        print(f'wrote {out} ({a.steps} steps in {time.time() - t0:.1f} s); vmm eval {out}', flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
