#!/usr/bin/env python3
"""PyTorch twin of crema's GPU benchmark nets (bench/run_gpu.sh), timed on one device.

Tasks (the classic deep-learning framework comparison):
  vgg_cifar          training of the VGG-style CIFAR-10 CNN (bench/gpu/vgg_cifar_synth_train.prototxt,
                     models/vgg_cifar) at batch 64: one step = zero grads, forward, cross-entropy,
                     backward, SGD (momentum 0.9, lr 0.01, biases lr x2 as Caffe's lr_mult 2);
  resnet50_features  ResNet-50 feature extraction (models/resnet50_features/deploy.prototxt) at
                     batch 32, eval mode, no autograd (torch.inference_mode): 32x2048 features;
  gru_imdb           training of the GRU sentiment model (models/gru_imdb: Embedding 30000x125,
                     nn.GRU 100 (cuDNN), last step, Linear 2) on 150 word ids at batch 64: one
                     step = zero grads, forward, cross-entropy, backward, clipping of the
                     gradients' L2 norm to 5, Adam (lr 0.001), as models/gru_imdb/solver.prototxt.

Modes: fp32 (TF32 off for cuDNN and matmul), tf32 (TF32 on for both, PyTorch's convolution
default), fp16 (torch.autocast float16, plus GradScaler when training), bf16 (torch.autocast
bfloat16). torch.backends.cudnn.benchmark = True. Input and labels are random, allocated on the
device once, before timing. Weights are initialised as the prototxts' fillers do (Xavier / MSRA).

Timing: CUDA events around the loop (time.perf_counter on the CPU), with one synchronisation
at the end. The first --warmup iterations are part of the "cold" figure (they include
cudnn.benchmark's autotuning, as `crema train`'s time includes its first iterations); the
iterations after them give the steady-state time per iteration. For ResNet-50 it also times
the same batches with a torch.cuda.synchronize() after every leaf module, to show what a
host synchronisation per layer costs (--no-layer-sync skips that run; bench/run_gpu.sh does,
since `crema time` records events between layers without synchronising).

Prints one JSON object. Run alone, e.g.:
  python3 bench/pytorch_gpu_peer.py --task vgg_cifar --mode fp16 --iters 2000
  python3 bench/pytorch_gpu_peer.py --task resnet50_features --mode bf16 --iters 100
  python3 bench/pytorch_gpu_peer.py --task vgg_cifar --device cpu --iters 3 --warmup 1   # smoke test
"""
import argparse
import contextlib
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

VGG_EPOCH_ITERS = 7813  # 10 epochs of 50,000 images at batch 64 (ceil(500000 / 64))
RESNET_IMAGES = 1000    # the comparison's 1000 images
GRU_EPOCH_ITERS = 1172  # 3 epochs of 25,000 reviews at batch 64 (models/gru_imdb/solver.prototxt)
GRU_STEPS, GRU_WORDS, GRU_POOL = 150, 30000, 64  # sequence length, vocabulary, distinct batches


# ---- nets ---------------------------------------------------------------------------------
class VGGCifar(nn.Module):
    """2x(conv3x3 50) -> pool -> drop .25 -> 2x(conv3x3 100) -> pool -> drop .25 -> fc512 -> relu
    -> drop .5 -> fc10 (ReLU after every convolution). Same as bench/pytorch_peer.py."""

    def __init__(self):
        super().__init__()
        self.conv1_1 = nn.Conv2d(3, 50, 3, padding=1)
        self.conv1_2 = nn.Conv2d(50, 50, 3, padding=1)
        self.conv2_1 = nn.Conv2d(50, 100, 3, padding=1)
        self.conv2_2 = nn.Conv2d(100, 100, 3, padding=1)
        self.fc1 = nn.Linear(100 * 8 * 8, 512)
        self.fc2 = nn.Linear(512, 10)
        for m in self.modules():  # Caffe's "xavier" filler: U(-sqrt(3/fan_in), +), bias 0
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                bound = math.sqrt(3.0 / fan_in)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.conv1_1(x))
        x = F.relu(self.conv1_2(x))
        x = F.dropout(F.max_pool2d(x, 2, 2), 0.25, self.training)
        x = F.relu(self.conv2_1(x))
        x = F.relu(self.conv2_2(x))
        x = F.dropout(F.max_pool2d(x, 2, 2), 0.25, self.training)
        x = F.dropout(F.relu(self.fc1(torch.flatten(x, 1))), 0.5, self.training)
        return self.fc2(x)


def conv_bn(cin, cout, k, stride=1, pad=0):
    """Caffe's Convolution (no bias) + BatchNorm(use_global_stats) + Scale(bias_term): in PyTorch
    a bias-free Conv2d and an affine BatchNorm2d in eval mode (eps 1e-5, Caffe's default)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=pad, bias=False),
                         nn.BatchNorm2d(cout, eps=1e-5))


class Bottleneck(nn.Module):
    """Caffe ResNet-50 block: branch2a 1x1 (carries the stride) -> 3x3 -> 1x1 (x4 channels);
    branch1 1x1 projection (with the same stride) on a stage's first block; Eltwise SUM, ReLU."""

    def __init__(self, cin, mid, stride, project):
        super().__init__()
        self.branch2a = conv_bn(cin, mid, 1, stride)
        self.branch2b = conv_bn(mid, mid, 3, 1, 1)
        self.branch2c = conv_bn(mid, mid * 4, 1)
        self.branch1 = conv_bn(cin, mid * 4, 1, stride) if project else None

    def forward(self, x):
        shortcut = self.branch1(x) if self.branch1 is not None else x
        y = F.relu(self.branch2a(x))
        y = F.relu(self.branch2b(y))
        y = self.branch2c(y)
        return F.relu(shortcut + y)


class ResNet50Features(nn.Module):
    """models/resnet50_features/deploy.prototxt: conv1 7x7/2 pad 3 + BN + Scale + ReLU, max pool
    3x3/2 (Caffe rounds pooling sizes up: ceil_mode=True, 112 -> 56), stages of 3, 4, 6, 3
    bottlenecks (64, 128, 256, 512 wide; stride 2 on the first block of stages 3-5, in its 1x1
    branch2a and branch1), average pool 7x7 (pool5), flatten to 2048 features."""

    def __init__(self):
        super().__init__()
        self.conv1 = conv_bn(3, 64, 7, 2, 3)
        blocks, cin = [], 64
        for mid, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(count):
                blocks.append(Bottleneck(cin, mid, stride if i == 0 else 1, project=(i == 0)))
                cin = mid * 4
        self.blocks = nn.Sequential(*blocks)
        for m in self.modules():  # Caffe's "msra" filler: N(0, sqrt(2 / fan_in))
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self.blocks(x)
        x = F.avg_pool2d(x, 7, 1)
        return torch.flatten(x, 1)


# ---- timing -------------------------------------------------------------------------------
class Clock:
    """CUDA events on a GPU, perf_counter on the CPU; mark() records, seconds(a, b) reads."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.marks = []

    def mark(self):
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            self.marks.append(e)
        else:
            self.marks.append(time.perf_counter())

    def finish(self):
        if self.cuda:
            torch.cuda.synchronize()

    def seconds(self, a, b):
        if self.cuda:
            return self.marks[a].elapsed_time(self.marks[b]) / 1e3
        return self.marks[b] - self.marks[a]


def set_mode(mode, device):
    """Math settings for the mode; returns (autocast context factory, use GradScaler)."""
    tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    if mode in ("fp32", "tf32"):
        return contextlib.nullcontext, False
    dtype = torch.float16 if mode == "fp16" else torch.bfloat16
    return (lambda: torch.autocast(device.type, dtype=dtype)), mode == "fp16"


def time_training(step, args, device, target_iters):
    """Runs step(i) for args.iters iterations, the first args.warmup being the warm-up.
    Returns the measured time (warm-up included), the steady time per iteration after the
    warm-up, and the time of target_iters iterations: the measured ones plus the rest at the
    steady rate (VGG-CIFAR's 10 epochs, GRU-IMDB's 3)."""
    iters, warm = args.iters, min(args.warmup, args.iters - 1)
    clock = Clock(device)
    clock.mark()
    for i in range(iters):
        if i == warm:
            clock.mark()
        loss = step(i)
    clock.mark()
    clock.finish()
    cold = clock.seconds(0, 2)                     # all `iters` iterations, warm-up included
    steady = clock.seconds(1, 2) / (iters - warm)  # seconds per iteration after the warm-up
    total = cold + (target_iters - iters) * steady if iters < target_iters else cold
    return {
        "iters": iters,
        "warmup": warm,
        "measured_s": round(cold, 4),
        "warmup_s": round(clock.seconds(0, 1), 4),
        "steady_ms_per_iter": round(steady * 1e3, 4),
        "target_iters": target_iters,
        "extrapolated": iters < target_iters,
        "total_s": round(total, 3),
        "final_loss": float(loss.detach().float().cpu()),
    }


def run_vgg(args, device, autocast, use_scaler):
    torch.manual_seed(args.seed)
    model = VGGCifar().to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights}, {"params": biases, "lr": 2 * args.lr}],
                          lr=args.lr, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    batch = args.batch or 64
    x = torch.rand(batch, 3, 32, 32, device=device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss

    result = time_training(lambda i: step(), args, device, VGG_EPOCH_ITERS)
    result.update({"batch": batch,
                   "images_per_s": round(batch / (result["steady_ms_per_iter"] / 1e3), 1)})
    return result


def run_resnet(args, device, autocast, _use_scaler):
    torch.manual_seed(args.seed)
    model = ResNet50Features().to(device).eval()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    batch = args.batch or 32
    x = torch.randn(batch, 3, 224, 224, device=device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    iters, warm = args.iters, args.warmup

    def timed():
        clock = Clock(device)
        with torch.inference_mode(), autocast():
            for _ in range(warm):
                out = model(x)
            clock.mark()
            for _ in range(iters):
                out = model(x)
            clock.mark()
        clock.finish()
        assert out.shape == (batch, 2048), out.shape
        return clock.seconds(0, 1) / iters, out

    per_batch, out = timed()
    result = {
        "iters": iters,
        "warmup": warm,
        "batch": batch,
        "ms_per_batch": round(per_batch * 1e3, 4),
        "images_per_s": round(batch / per_batch, 1),
        "target_images": RESNET_IMAGES,
        # 1000 images = 1000 / 32 = 31.25 batches at the steady per-batch time
        "total_s": round(per_batch * RESNET_IMAGES / batch, 4),
        "features_finite": bool(torch.isfinite(out.float()).all()),
    }
    if device.type == "cuda" and not args.no_layer_sync:
        hooks = [m.register_forward_hook(lambda *_: torch.cuda.synchronize())
                 for m in model.modules() if len(list(m.children())) == 0]
        synced, _ = timed()
        for h in hooks:
            h.remove()
        result["layer_sync_ms_per_batch"] = round(synced * 1e3, 4)
        result["layer_sync_total_s"] = round(synced * RESNET_IMAGES / batch, 4)
    return result


class GruImdb(nn.Module):
    """models/gru_imdb: word ids [150, N] -> Embedding 30000x125 -> GRU 100 -> last step -> fc 2.
    crema's GRU has nn.GRU's equations and weight layout. Initialised as the prototxt's fillers:
    embedding U(-0.05, 0.05), GRU weights U(-0.1, 0.1) and biases 0, classifier xavier."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(GRU_WORDS, 125)
        self.gru = nn.GRU(125, 100)
        self.fc = nn.Linear(100, 2)
        with torch.no_grad():
            self.embed.weight.uniform_(-0.05, 0.05)
            for name, p in self.gru.named_parameters():
                p.uniform_(-0.1, 0.1) if name.startswith("weight") else p.zero_()
            bound = math.sqrt(3.0 / 100)
            self.fc.weight.uniform_(-bound, bound)
            self.fc.bias.zero_()

    def forward(self, ids):
        out, _ = self.gru(self.embed(ids))
        return self.fc(out[-1])


def run_gru(args, device, autocast, use_scaler):
    torch.manual_seed(args.seed)
    model = GruImdb().to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-8)
    scaler = torch.amp.GradScaler(device.type) if use_scaler else None
    batch = args.batch or 64
    # A pool of random batches on the device, cycled (crema's Data layer copies each batch
    # from pinned host memory, 38 KB at batch 64).
    pool_x = torch.randint(0, GRU_WORDS, (GRU_POOL, GRU_STEPS, batch), device=device)
    pool_y = torch.randint(0, 2, (GRU_POOL, batch), device=device)

    def step(i):
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(pool_x[i % GRU_POOL]), pool_y[i % GRU_POOL])
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        return loss

    result = time_training(step, args, device, GRU_EPOCH_ITERS)
    result["batch"] = batch
    return result


TASKS = {"vgg_cifar": run_vgg, "resnet50_features": run_resnet, "gru_imdb": run_gru}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--mode", choices=("fp32", "tf32", "fp16", "bf16"), default="fp32")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--iters", type=int, default=None,
                        help="vgg_cifar: training iterations, warm-up included (default 2000); "
                             "resnet50_features: timed batches after the warm-up (default 100); "
                             "gru_imdb: training iterations, warm-up included (default 1172)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up iterations (default: vgg_cifar 50, resnet50_features 10, "
                             "gru_imdb 20)")
    parser.add_argument("--batch", type=int, default=0,
                        help="default: 64 (VGG, GRU), 32 (ResNet-50)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--channels-last", action="store_true",
                        help="NHWC tensors (off: NCHW, as crema)")
    parser.add_argument("--no-layer-sync", action="store_true",
                        help="ResNet-50: skip the run with a synchronisation after every layer")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (CPU runs; 0: torch's)")
    args = parser.parse_args()
    training = args.task in ("vgg_cifar", "gru_imdb")
    if args.iters is None:
        args.iters = {"vgg_cifar": 2000, "resnet50_features": 100, "gru_imdb": GRU_EPOCH_ITERS}[
            args.task]
    if args.warmup is None:
        args.warmup = {"vgg_cifar": 50, "resnet50_features": 10, "gru_imdb": 20}[args.task]
    if args.iters < (2 if training else 1):
        parser.error("--iters too small")

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("pytorch_gpu_peer.py: no CUDA device visible to PyTorch")
        torch.cuda.set_device(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    autocast, use_scaler = set_mode(args.mode, device)

    result = {"task": args.task, "mode": args.mode, "device": str(device)}
    result.update(TASKS[args.task](args, device, autocast, use_scaler))
    result.update({
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "allow_tf32": [torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32],
        "channels_last": args.channels_last,
    })
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
