"""Issue 19/26 reference, run by hand (needs torch): weaver-core's own ParticleTransformer (the
2022 paper code) in PyTorch eager on the CPU, as benches/train_step.rs times
`{"particle_transformer": …}`: parameter counts (5 features, one output; the numbers
src/train/models/part.rs pins) and one AdamW step on 64 jets, 256 points, 9 features, 2
threads, with and without the pair interaction.

Usage: python3 benches/torch_part_step.py PATH/TO/ParticleTransformer.py
  (weaver-core at commit 34e2ee2: `git show 34e2ee2:weaver/nn/model/ParticleTransformer.py`)
"""
import importlib.util
import sys
import time
import types

import torch

# The file imports weaver's logger only; stand in for it.
logger = types.ModuleType("weaver.utils.logger")
logger._logger = __import__("logging").getLogger("weaver")
for name in ("weaver", "weaver.utils"):
    sys.modules.setdefault(name, types.ModuleType(name))
sys.modules["weaver.utils.logger"] = logger
spec = importlib.util.spec_from_file_location("part2022", sys.argv[1])
P = importlib.util.module_from_spec(spec)
spec.loader.exec_module(P)

torch.set_num_threads(2)
PAPER = dict(embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8)
DEFAULT = dict(embed_dims=[64, 256, 64], pair_embed_dims=[32, 32, 32], num_heads=8, num_layers=6)


def model(F, pairs, **kw):
    return P.ParticleTransformer(input_dim=F, num_classes=1, pair_input_dim=4 if pairs else 0,
                                 use_pre_activation_pair=False, trim=False, **kw)


def params(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


print("parameters, 5 features, 1 output: paper", params(model(5, True, **PAPER)),
      "| paper without interaction", params(model(5, False, **PAPER)),
      "| jetpipe's default", params(model(5, True, **DEFAULT)),
      "| small", params(model(5, True, embed_dims=[16, 32, 16], pair_embed_dims=[8], num_heads=2,
                                  num_layers=2, num_cls_layers=1)))

B, R, F = 64, 256, 9
for pairs in (True, False):
    torch.manual_seed(0)
    m = model(F, pairs, **PAPER)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)
    n = torch.randint(30, R, (B,))
    mask = (torch.arange(R)[None, :] < n[:, None]).float().unsqueeze(1)  # [B, 1, R]
    x = torch.randn(B, F, R) * mask
    pt, eta, phi = torch.rand(B, R) * mask[:, 0], torch.randn(B, R) * 0.2, torch.randn(B, R) * 0.2
    v = torch.stack([pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta), pt * torch.cosh(eta)], 1) * mask
    y = (torch.rand(B) > 0.5).float()

    def step():
        out = m(x, v if pairs else None, mask).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t, k = time.perf_counter(), 0
    while time.perf_counter() - t < 10 or k < 2:
        step()
        k += 1
    s = (time.perf_counter() - t) / k / B
    print(f"PyTorch {torch.__version__} eager, paper ParT, interaction={pairs}: "
          f"{s * 1e6:.0f} µs/jet, {1 / s:.1f} jets/s (batch {B}, {R} points, {k} steps, 2 threads)")
