"""Trains an exported vmm model (docs/scaling.md); fixed file of `vmm export pytorch`.

    python train.py --steps N --out RUN [--data FILE] [--batch B] [--device cuda|cpu]
                    [--init RUN] [--seed S] [--k K] [--log-every N] [--checkpoint-every N]
    torchrun --nproc_per_node G train.py ...   (one process per GPU, or per CPU share with gloo)
    python3 -m torch.distributed.run --nproc_per_node G --redirects 1 --tee 1 train.py ...

Alone or under torchrun (DDP: every rank draws its own episodes, seed + rank; the gradients of
each rank's batch of B / world examples are averaged by an all-reduce, which is the gradient of
the whole batch; rank 0 writes the run). RUN is a vmm run folder: config.json, model.vmm,
metrics.jsonl, checkpoint/ and final/ with vmm's names and layouts, so `vmm eval RUN`,
`vmm sample`, `vmm classify` and `vmm compare` read it. --init RUN starts from a vmm run's
weights (final/, else checkpoint/), or from a .safetensors file of vmm's names (saveWeights).

Debian's torch 1.13 on Python 3.11 cannot parse torchrun's own --redirects / --tee defaults;
there, start it as `python3 -m torch.distributed.run --redirects 1 --tee 1 ...` (docs/scaling.md).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model as M  # noqa: E402
import vmm_runtime as rt  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=f'train the exported vmm model {M.NAME}')
    p.add_argument('--steps', type=int, default=M.TRAIN['steps'])
    p.add_argument('--out', required=True, help='the vmm run folder to write')
    p.add_argument('--data', help='an .npz (images, labels, train) or .npy of images; default: the data/ of the export')
    p.add_argument('--batch', type=int, default=M.TRAIN['batch'], help='the global batch (split over the ranks)')
    p.add_argument('--k', type=int, default=M.ESTIMATOR['k'])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--init', help='the weights to start from: a vmm run folder (final/, else checkpoint/) or a .safetensors file (saveWeights)')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--log-every', type=int, default=100)
    p.add_argument('--checkpoint-every', type=int, default=1000)
    return p.parse_args()


def default_data():
    folder = os.path.join(HERE, 'data')
    files = sorted(f for f in os.listdir(folder) if f.endswith('.npz')) if os.path.isdir(folder) else []
    if not files:
        raise SystemExit('no data: pass --data FILE (.npz or .npy), or export with the data set (vmm export pytorch without --no-data)')
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
    opt_cfg = M.TRAIN['optimizer']
    if opt_cfg['kind'] != 'adam':
        raise SystemExit(f"optimizer {opt_cfg['kind']}: the export trains with adam only")
    model = M.Model(a.seed).to(device)
    if a.init:
        model.load_vmm(weights_of(a.init))
    params = model.vmm_parameters()
    if world > 1:
        for p in params.values():
            dist.broadcast(p.data, 0)
    ep = M.TRAIN['episodes']
    data_path = a.data or default_data()
    data = rt.load_images(data_path)
    memories = M.INPUTS['memories']
    stream = rt.Stream(data, a.seed * 1000 + rank, *((ep['classes'], ep['shots'], ep['distractors']) if memories else ()))
    gen = torch.Generator(device=device).manual_seed(a.seed * 7919 + rank)
    noise = rt.Noise(gen, device)
    opt = rt.Adam(params, opt_cfg['lr'], clip=opt_cfg.get('clip'))
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
            'seed': a.seed, 'checkpointEvery': a.checkpoint_every, 'validEvery': a.checkpoint_every, 'validSize': 128,
            'createdAt': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime()),
            'exported': {'by': 'vmm export pytorch', 'world': world, 'device': str(device.type)},
        }
        with open(os.path.join(out, 'config.json'), 'w') as f:
            json.dump(config, f, indent=2)
        with open(os.path.join(out, 'model.vmm'), 'w') as f:
            f.write(source)
        metrics = open(os.path.join(out, 'metrics.jsonl'), 'w')
        # Only rank 0 prints (under torchrun --tee 1 its lines come prefixed [default0]:).
        per_rank = f' = {world} processes x {b} ({dist.get_backend()})' if world > 1 else ''
        print(f"training {M.NAME} ({M.ESTIMATOR['kind']}, k = {a.k}) for {a.steps} steps on {device}: batch {a.batch}{per_rank}, data {data_path}, into {out}", flush=True)
    t0 = time.time()
    last = t0
    for step in range(1, a.steps + 1):
        x, mem = stream.next(b)
        inputs = {M.INPUTS['data'][0]: x.to(device)}
        if memories:
            inputs[memories[0]] = mem.to(device)
        r = M.forward_estimate(model, inputs, a.k, noise, state)
        loss = -r['surrogate'] + (r['extra_loss'] if r.get('extra_loss') is not None else 0)
        for p in params.values():
            p.grad = None
        loss.backward()
        if world > 1:
            for p in params.values():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= world
        opt.step()
        state = r['state']
        if step % a.log_every == 0 or step == a.steps:
            figures = torch.stack([r['bound'].detach().mean(), loss.detach()])
            if world > 1:
                dist.all_reduce(figures)
                figures /= world
            now = time.time()
            if rank == 0:
                done = a.log_every if step % a.log_every == 0 else step % a.log_every
                rec = {'kind': 'train', 'step': step, 'bound': float(figures[0]), 'loss': float(figures[1]), 'ms': 1000 * (now - last) / done, 'stepsPerSec': done / (now - last)}
                metrics.write(json.dumps(rec) + '\n')
                metrics.flush()
                print(f"step {step}  bound {rec['bound']:.3f}  {rec['stepsPerSec']:.1f} steps/s", flush=True)
            last = now
        if rank == 0 and step % a.checkpoint_every == 0 and step < a.steps:
            rt.write_checkpoint(os.path.join(out, 'checkpoint'), params, step, opt.state())
    if rank == 0:
        rt.write_checkpoint(os.path.join(out, 'final'), params, a.steps)
        with open(os.path.join(out, 'summary.json'), 'w') as f:
            json.dump({'steps': a.steps, 'seconds': time.time() - t0, 'world': world}, f, indent=2)
        metrics.close()
        print(f'wrote {out} ({a.steps} steps in {time.time() - t0:.1f} s); vmm eval {out}', flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
