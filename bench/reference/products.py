"""The PyTorch side of bench/products.ts: each dense layer forward (addmm, relu) and backward
(dw = x^T g, db = sum_rows g, dx = g w^T where the layer needs it), timed alone; prints the
median ms per layer as JSON. torch.set_num_threads(1), as bench_vma.py runs."""
import json
import sys
import time

import torch

torch.set_num_threads(1)
spec = json.loads(sys.argv[1])
reps = spec["reps"]
out = []
g = torch.Generator().manual_seed(1)
with torch.no_grad():
    for _name, n, k, m, relu, need_dx in spec["layers"]:
        x = torch.rand(n, k, generator=g)
        w = torch.rand(k, m, generator=g) * 0.2 - 0.1
        b = torch.rand(m, generator=g) * 0.2 - 0.1
        dy = torch.rand(n, m, generator=g) * 2 - 1

        def once():
            y = torch.addmm(b, x, w)
            if relu:
                y = torch.relu(y)
                gr = dy * (y > 0)
            else:
                gr = dy
            torch.mm(x.t(), gr)
            gr.sum(0)
            if need_dx:
                torch.mm(gr, w.t())

        for _ in range(5):
            once()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            once()
            ts.append((time.perf_counter() - t0) * 1000)
        ts.sort()
        out.append(ts[len(ts) // 2])
print(json.dumps(out))
