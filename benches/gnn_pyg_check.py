"""Optional check of jetpipe's graph layers against PyTorch Geometric's own layers (not run in
CI: needs torch and torch_geometric). It reads the case that `tests/it/gnn.rs` writes (random
graphs with short jets and padding, features, the Burn layers' weights and outputs), loads the
weights into GCNConv, SAGEConv, GINConv and GATConv, runs them on the edge list (edge j -> i for
every real neighbour j that point i lists) and compares the outputs at the real points.
EdgeConv is not compared: PyG's EdgeConv runs its MLP on real edges only, so its batch
statistics differ from weaver-core's ParticleNet block, which jetpipe follows (the numpy
reference in tests/python/gnn_reference.py covers it).

Usage:
  JETPIPE_GNN_CASE=/tmp/gnn_case.json cargo test --test it gnn::
  python3 benches/gnn_pyg_check.py /tmp/gnn_case.json
"""

import json
import pathlib
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit notices in PyG imports
import torch  # noqa: E402
from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "python"))
import gnn_reference  # noqa: E402

TOL = 1e-5


def linear_into(lin, p):
    """Burn's Linear weight is [in, out]; torch's is [out, in]."""
    w = torch.tensor(np.asarray(p["w"], dtype=np.float64).reshape(p["shape"]).T)
    lin.weight.data = w
    if p["b"] is not None:
        lin.bias.data = torch.tensor(np.asarray(p["b"], dtype=np.float64))
    else:
        assert lin.bias is None, "a bias-free layer has a bias in PyG"


def edge_index(c):
    """The case's real edges (j -> i) as PyG's `edge_index`, from the numpy reference."""
    src, dst = gnn_reference.edges(c)
    return torch.tensor(np.stack([src, dst]), dtype=torch.long)


def main():
    torch.set_default_dtype(torch.float64)
    c = json.load(open(sys.argv[1]))
    B, R, F = c["B"], c["R"], c["F"]
    x = torch.tensor(np.asarray(c["x"], dtype=np.float64).reshape(B * R, F))
    ei = edge_index(c)
    real = np.asarray(c["mask"]).reshape(B * R) > 0

    def gcn(p):
        o = p["lin"]["shape"][1]
        conv = GCNConv(F, o)
        linear_into(conv.lin, p["lin"])
        conv.bias.data = torch.tensor(p["bias"])
        return conv(x, ei)

    def sage(p):
        o = p["lin_l"]["shape"][1]
        conv = SAGEConv(F, o, aggr="mean")
        linear_into(conv.lin_l, p["lin_l"])
        linear_into(conv.lin_r, p["lin_r"])
        return conv(x, ei)

    def gin(p):
        o = p["lin1"]["shape"][1]
        mlp = torch.nn.Sequential(torch.nn.Linear(F, o), torch.nn.ReLU(), torch.nn.Linear(o, o))
        conv = GINConv(mlp, eps=p["eps"], train_eps=False)  # resets the MLP: load after
        linear_into(conv.nn[0], p["lin1"])
        linear_into(conv.nn[2], p["lin2"])
        return conv(x, ei)

    def gat(p):
        h, ch = p["heads"], p["C"]
        conv = GATConv(F, ch, heads=h)
        lin = getattr(conv, "lin", None) or conv.lin_src
        linear_into(lin, p["lin"])
        conv.att_src.data = torch.tensor(p["att_src"]).reshape(1, h, ch)
        conv.att_dst.data = torch.tensor(p["att_dst"]).reshape(1, h, ch)
        conv.bias.data = torch.tensor(p["bias"])
        return conv(x, ei)

    failed = False
    layers = [("gcn", gcn), ("gcn_narrowing", gcn), ("sage", sage), ("sage_narrowing", sage),
              ("gin", gin), ("gat", gat)]
    with torch.no_grad():
        for name, f in layers:
            want = f(c[name]).numpy()[real]
            got = np.asarray(c[name]["out"], dtype=np.float64).reshape(B * R, -1)[real]
            err = np.abs(got - want).max() / max(1.0, np.abs(want).max())
            ok = err <= TOL
            failed |= not ok
            print(f"{name}: {'ok' if ok else 'FAILED'} against PyG (max relative difference {err:.2e})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
