#!/usr/bin/python3
"""The PyTorch DDP (gloo) counterpart of quorum-torch-example: the same dataset, model,
initialisation, batch slicing, optimizer and timing, so the two step times can be compared.

Run under mpiexec (ranks from MPICH's PMI_RANK/PMI_SIZE) or torchrun (RANK/WORLD_SIZE), with
MASTER_ADDR/MASTER_PORT set; --local trains the global batch in one process with no process
group (the compute-only baseline). Debian's python3-torch 1.13: run it with /usr/bin/python3,
with libopenblas0 installed (without it torch's CPU matmuls are ~30x slower).

Output matches quorum-torch-example's summary lines so scripts/compare_ddp.sh reads both alike.
"""
import argparse
import datetime
import math
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def make_dataset(a):
    # Same calls, same order as make_dataset() in tools/torch_example.cc.
    torch.manual_seed(a.seed)
    x = torch.randn(a.samples, a.features)
    w1 = torch.randn(a.features, 32)
    b1 = torch.randn(32)
    w2 = torch.randn(32, 1)
    h = torch.tanh(x.mm(w1) / math.sqrt(a.features) + b1)
    return x, (h.mm(w2) > 0).float()


def make_model(a):
    return nn.Sequential(nn.Linear(a.features, a.hidden), nn.Tanh(),
                         nn.Linear(a.hidden, a.hidden), nn.Tanh(), nn.Linear(a.hidden, 1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=256, help="global batch (divisible by ranks)")
    p.add_argument("--samples", type=int, default=8192)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--print-every", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--local", action="store_true", help="one process, no DDP")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()

    if a.local:
        rank, size = 0, 1
    else:
        rank = int(os.environ.get("PMI_RANK", os.environ.get("RANK", "0")))
        size = int(os.environ.get("PMI_SIZE", os.environ.get("WORLD_SIZE", "1")))
        # A peer that never arrives fails the run in a minute instead of gloo's 30.
        dist.init_process_group("gloo", rank=rank, world_size=size,
                                timeout=datetime.timedelta(seconds=60))
    if a.batch % size or a.batch > a.samples:
        raise SystemExit(f"--batch {a.batch} must divide by {size} ranks and fit --samples")
    torch.set_num_threads(a.threads)
    x, y = make_dataset(a)
    torch.manual_seed(a.seed + 1 + rank)  # DDP's constructor broadcasts rank 0's weights
    model = make_model(a)
    net = model if a.local else nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    local = a.batch // size
    if rank == 0 and not a.quiet:
        who = "1 process, no DDP (--local)" if a.local else f"{size} ranks, DDP gloo"
        print(f"ddp-baseline: {who}, MLP {a.features}-{a.hidden}-{a.hidden}-1, global batch "
              f"{a.batch} ({local} per rank), {a.steps} steps, {a.threads} torch thread(s)")

    def global_loss(loss):
        if a.local:
            return loss.item()
        t = loss.detach().clone()
        dist.all_reduce(t)
        return t.item() / size

    step_ms, first, last = [], 0.0, 0.0
    for step in range(a.steps):
        t0 = time.perf_counter()
        start = (step * a.batch) % (a.samples - a.batch + 1) + rank * local
        xb, yb = x[start:start + local], y[start:start + local]
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(xb), yb)
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        if step >= a.warmup:
            step_ms.append(1e3 * (t1 - t0))
        if step % a.print_every == 0 or step == a.steps - 1:
            l = global_loss(loss)
            if step == 0:
                first = l
            last = l
            if rank == 0 and not a.quiet:
                print(f"step {step:4d}  loss {l:.6f}")
    if rank == 0:
        print(f"final loss {last:.6f} (first {first:.6f}) after {a.steps} steps")
        print(f"step time: median {statistics.median(step_ms):.3f} ms, mean "
              f"{statistics.fmean(step_ms):.3f} ms over {len(step_ms)} steps (after {a.warmup} warmup)")
    if not a.local:
        # Torch 1.13's gloo teardown (destroy_process_group, or the process group's destructor
        # at exit) sometimes hangs on rank 0 once the other rank has gone: meet, then leave
        # without tearing down.
        dist.barrier()
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
