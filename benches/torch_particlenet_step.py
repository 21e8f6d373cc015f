"""Issue 26 reference, run by hand (needs torch): one AdamW training step of weaver-core-sized ParticleNet (static graph: the same random
16-neighbour lists in every block) in PyTorch eager on the CPU: 64 jets, 256 points, 9 features, 2 threads, as
benches/train_step.rs times `{"particle_net": {"dynamic": false}}`.
Usage: python3 benches/torch_particlenet_step.py"""
import time, torch, torch.nn as nn
torch.set_num_threads(2)
B, R, F, K = 64, 256, 9, 16

class EdgeConv(nn.Module):
    def __init__(s, i, ws):
        super().__init__()
        chans = [2 * i] + ws
        s.convs = nn.ModuleList([nn.Conv2d(a, b, 1, bias=False) for a, b in zip(chans, chans[1:])])
        s.bns = nn.ModuleList([nn.BatchNorm2d(b) for b in ws])
        s.sc = nn.Sequential(nn.Conv1d(i, ws[-1], 1, bias=False), nn.BatchNorm1d(ws[-1])) if i != ws[-1] else None
    def forward(s, x, idx):  # x [B, C, R], idx [B, R, K]
        b, c, r = x.shape
        flat = (idx + torch.arange(b).view(b, 1, 1) * r).reshape(-1)
        xt = x.transpose(1, 2).reshape(b * r, c)
        xj = xt[flat].view(b, r, K, c).permute(0, 3, 1, 2)
        xi = x.unsqueeze(-1).expand(-1, -1, -1, K)
        e = torch.cat([xi, xj - xi], 1)
        for conv, bn in zip(s.convs, s.bns):
            e = torch.relu(bn(conv(e)))
        fts = e.mean(-1)
        sc = s.sc(x) if s.sc is not None else x
        return torch.relu(sc + fts)

class PN(nn.Module):
    def __init__(s):
        super().__init__()
        s.bn = nn.BatchNorm1d(F)
        s.blocks = nn.ModuleList([EdgeConv(F, [64]*3), EdgeConv(64, [128]*3), EdgeConv(128, [256]*3)])
        s.fusion = nn.Sequential(nn.Conv1d(448, 384, 1, bias=False), nn.BatchNorm1d(384), nn.ReLU())
        s.fc = nn.Sequential(nn.Linear(384, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 1))
    def forward(s, x, idx):
        x = s.bn(x); outs = []
        for blk in s.blocks:
            x = blk(x, idx); outs.append(x)
        return s.fc(s.fusion(torch.cat(outs, 1)).mean(-1)).squeeze(-1)

m = PN(); opt = torch.optim.AdamW(m.parameters(), 1e-3, weight_decay=0.05)
x = torch.randn(B, F, R); idx = torch.randint(0, R, (B, R, K)); y = (torch.arange(B) % 2).float()
def step():
    opt.zero_grad(); loss = nn.functional.binary_cross_entropy_with_logits(m(x, idx), y); loss.backward(); opt.step()
step()
t = time.time(); n = 0
while n < 2 or time.time() - t < 20:
    step(); n += 1
dt = (time.time() - t) / (n * B)
print(f"PyTorch {torch.__version__} ParticleNet (static) training step: {dt*1e6:.0f} us/jet, {1/dt:.1f} jets/s, {n} steps")
