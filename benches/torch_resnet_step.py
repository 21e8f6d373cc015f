#!/usr/bin/env python3
"""PyTorch reference of `benches/train_step.rs` (issue 26): one training step of ResNet-PC
(forward, BCE-with-logits, backward, AdamW with weight decay 0.05, lr 1e-3) in PyTorch CPU
eager (or on a GPU with `--device cuda`), on the same random inputs' shape as the Burn bench: `[B, R, F]` normal points, labels
alternating 0/1.

The architecture is built from the layer table the Rust bench passes (`--shape`, the JSON of
`Variant::shape()`: base Conv1d kernel/stride/padding/channels, block output channels), as
e2e_sparse's `Supervised/CNN/model.py` composes it: base Conv1d, then per block 1x1 conv ->
BN -> ReLU -> k=3 conv (padding 1) -> BN -> ReLU -> 1x1 conv, plus a 1x1 shortcut, ReLU,
MaxPool1d(2, 2); global max pool; Linear(C, 1). The parameter count is printed so that the
caller can check it equals Burn's.

Usage (what the Rust bench runs):
  python3 benches/torch_resnet_step.py --shape JSON --resolution 1024 --features 9 \
      --batch 64 --threads 2 --secs 10
Prints one line: `torch <jets/s> jets/s params <count> steps <n> torch <version>`.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c: int, o: int):
        super().__init__()
        self.conv1 = nn.Conv1d(c, c, 1)
        self.bn1 = nn.BatchNorm1d(c)
        self.conv2 = nn.Conv1d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(c)
        self.conv3 = nn.Conv1d(c, o, 1)
        self.shortcut = nn.Conv1d(c, o, 1)
        self.pool = nn.MaxPool1d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.conv3(y) + self.shortcut(x)
        return self.pool(torch.relu(y))


class ResNetPC(nn.Module):
    def __init__(self, shape: dict, features: int):
        super().__init__()
        self.base = nn.Conv1d(
            features,
            shape["channels"],
            shape["kernel"],
            stride=shape["stride"],
            padding=shape["padding"],
        )
        c, blocks = shape["channels"], []
        for o in shape["blocks"]:
            blocks.append(Block(c, o))
            c = o
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, 1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.base(points.transpose(1, 2)))
        return self.head(x.amax(dim=2)).squeeze(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", required=True, help="JSON layer table (Variant::shape)")
    ap.add_argument("--resolution", type=int, required=True)
    ap.add_argument("--features", type=int, default=9)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (scripts/gpu-check.sh)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ResNetPC(json.loads(a.shape), a.features).to(dev)
    model.train()
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    bce = nn.BCEWithLogitsLoss()
    x = torch.randn(a.batch, a.resolution, a.features).to(dev)
    y = (torch.arange(a.batch) % 2).float().to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = bce(model(x), y)
        loss.backward()
        opt.step()

    step()  # warm-up, as the Burn bench
    sync()
    t0, steps = time.perf_counter(), 0
    while steps < 2 or time.perf_counter() - t0 < a.secs:
        step()
        steps += 1
    sync()
    jets_per_s = steps * a.batch / (time.perf_counter() - t0)
    print(f"torch {jets_per_s:.2f} jets/s params {params} steps {steps} torch {torch.__version__}")


if __name__ == "__main__":
    main()
