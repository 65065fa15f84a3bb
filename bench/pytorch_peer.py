#!/usr/bin/env python3
"""PyTorch twin of crema's CPU timing nets (bench/lenet_time.prototxt, bench/vgg_cifar.prototxt,
models/gru_imdb/train_val.prototxt).

Times, on the CPU with torch.set_num_threads(N), at batch 64 on random data:
  fwd_bwd  forward + loss + backward (the same work `crema time` measures), and
  step     forward + loss + backward + update, i.e. a full training iteration: for LeNet and
           VGG-CIFAR SGD (momentum 0.9, weight decay 5e-4, as in Caffe's lenet_solver); for
           the GRU Adam (lr 0.001, betas 0.9/0.999) after clipping the gradients' L2 norm to 5,
           as models/gru_imdb/solver.prototxt trains it.
Gradients are zeroed (set to None) before each iteration in both modes. The two modes are
interleaved iteration by iteration after a warm-up, so machine noise affects both alike.
Prints one JSON object: medians (and means) in ms per iteration, plus torch's configuration.

Usage: pytorch_peer.py --net lenet|vgg_cifar [--threads N] [--iterations K] [--warmup W]
"""
import argparse
import json
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    """models/lenet: conv5x5x20 -> max2 -> conv5x5x50 -> max2 -> fc500 -> relu -> fc10 (no conv ReLU)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.ip1 = nn.Linear(50 * 4 * 4, 500)
        self.ip2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 2, 2)
        x = F.max_pool2d(self.conv2(x), 2, 2)
        x = F.relu(self.ip1(torch.flatten(x, 1)))
        return self.ip2(x)


class VGGCifar(nn.Module):
    """bench/vgg_cifar.prototxt: 2x(conv3x3 50) -> pool -> drop .25 -> 2x(conv3x3 100) -> pool
    -> drop .25 -> fc512 -> relu -> drop .5 -> fc10."""

    def __init__(self):
        super().__init__()
        self.conv1_1 = nn.Conv2d(3, 50, 3, padding=1)
        self.conv1_2 = nn.Conv2d(50, 50, 3, padding=1)
        self.conv2_1 = nn.Conv2d(50, 100, 3, padding=1)
        self.conv2_2 = nn.Conv2d(100, 100, 3, padding=1)
        self.fc1 = nn.Linear(100 * 8 * 8, 512)
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x):
        x = F.relu(self.conv1_1(x))
        x = F.relu(self.conv1_2(x))
        x = F.dropout(F.max_pool2d(x, 2, 2), 0.25, self.training)
        x = F.relu(self.conv2_1(x))
        x = F.relu(self.conv2_2(x))
        x = F.dropout(F.max_pool2d(x, 2, 2), 0.25, self.training)
        x = F.dropout(F.relu(self.fc1(torch.flatten(x, 1))), 0.5, self.training)
        return self.fc2(x)


class GruImdb(nn.Module):
    """models/gru_imdb: word ids [150, N] -> Embedding 30000x125 -> GRU 100 -> last step -> fc 2.
    crema's GRU uses nn.GRU's equations and weight layout."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30000, 125)
        self.gru = nn.GRU(125, 100)
        self.fc = nn.Linear(100, 2)

    def forward(self, ids):
        out, _ = self.gru(self.embed(ids))
        return self.fc(out[-1])


def blas_info():
    """BLAS_INFO from torch's build configuration (e.g. 'mkl'), or '?'."""
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return m.group(1) if m else "?"


NETS = {  # name: (model, input shape after the batch axis; None: GRU word ids)
    "lenet": (LeNet, (1, 28, 28)),
    "vgg_cifar": (VGGCifar, (3, 32, 32)),
    "gru_imdb": (GruImdb, None),
}
GRU_STEPS, GRU_WORDS = 150, 30000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=sorted(NETS), required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=50, help="timed iterations per mode")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process
    torch.manual_seed(7)

    cls, chw = NETS[args.net]
    model = cls().train()
    if chw is None:  # the GRU: time-major word ids, random labels, Adam with clipping
        opt = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-8)
        x = torch.randint(0, GRU_WORDS, (GRU_STEPS, args.batch))
        y = torch.randint(0, 2, (args.batch,))
        clip = 5.0
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = torch.randn(args.batch, *chw)
        y = torch.full((args.batch,), 3, dtype=torch.long)  # constant label, as the prototxts
        clip = None

    def fwd_bwd():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    def step():
        loss = fwd_bwd()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
        fwd_bwd()

    times = {"fwd_bwd": [], "step": []}
    for _ in range(args.iterations):
        for name, fn in (("fwd_bwd", fwd_bwd), ("step", step)):
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)

    result = {
        "net": args.net,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "torch": torch.__version__,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "blas": blas_info(),
    }
    for name, v in times.items():
        result[name + "_median_ms"] = round(statistics.median(v), 3)
        result[name + "_mean_ms"] = round(statistics.fmean(v), 3)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
