"""Position bias of the point cut among pixels of equal score, before and after jetpipe's
tie rule, on generator jets (numpy + h5py only).

An HCAL tower is a block of equal pixels, so the R-th point of a jet often falls inside a
group of equal scores of which only part is kept. Which part is the tie rule's choice:
- row-major (jetpipe before #24): the first pixels in row-major order, i.e. the top rows;
- jetpipe's tie key (used): a uint32 hash of the pixel index salted with the hit count
  (`stages::pointcloud::tie_key`), re-implemented here;
- random: numpy's random permutation, which is what e2e_sparse's unstable argsort amounts to.

For every jet whose cut at resolution R splits a tie group, the kept members' mean row and
column minus the whole group's is that jet's shift (in pixels; rows are η with the default
`row_axis`). Printed: the mean shift ± its standard error and the share of jets shifted
towards the top (Δrow < 0).

    python benches/tie_bias.py data-samples/qg_sample.h5 [--res 256 512 768 1024] [--check]

With --check the run fails unless the row-major rule shows a shift of more than 5 standard
errors and jetpipe's rule none beyond 4 (the test suite runs this).
"""
import argparse
import sys

import h5py
import numpy as np
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))
from tie_key import tie_key  # noqa: E402


def shifts(flat: np.ndarray, w: int, res: int, rule: str, rng: np.random.Generator):
    """(Δrow, Δcol) of every jet whose cut at `res` splits a group of equal scores."""
    out = []
    for img in flat:
        hit = np.nonzero((img > 0).any(axis=1))[0]
        if len(hit) <= res:
            continue
        score = np.zeros(len(hit), np.float32)
        for ch in range(img.shape[1]):
            v = img[hit, ch]
            score += v * v
        if rule == "row-major":
            second = hit
        elif rule == "jetpipe":
            second = tie_key(hit, len(hit))
        else:
            second = rng.permutation(len(hit))
        order = np.lexsort((hit, second, -score))
        cut = score[order[res - 1]]
        group = hit[score == cut]
        kept = hit[order[:res]][score[order[:res]] == cut]
        if len(kept) == len(group):
            continue
        dr = (kept // w).mean() - (group // w).mean()
        dc = (kept % w).mean() - (group % w).mean()
        out.append((dr, dc))
    return np.array(out).reshape(-1, 2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--res", type=int, nargs="+", default=[256])
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    with h5py.File(a.file, "r") as f:
        x = f["X_jets"][:].astype(np.float32)
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    ok = True
    for res in a.res:
        print(f"tie bias at the cut, {a.file}, R={res} ({n} jets)")
        print(f"{'rule':<22}{'jets':>6}{'mean Δrow':>16}{'mean Δcol':>16}{'Δrow < 0':>10}")
        for rule in ("row-major", "jetpipe", "random"):
            s = shifts(flat, w, res, rule, np.random.default_rng(9))
            m, se = s.mean(axis=0), s.std(axis=0, ddof=1) / np.sqrt(len(s))
            frac = (s[:, 0] < 0).mean()
            label = {"row-major": "row-major (before)", "jetpipe": "jetpipe tie key (used)",
                     "random": "random (e2e_sparse)"}[rule]
            print(f"{label:<22}{len(s):>6}{m[0]:>9.3f} ± {se[0]:.3f}{m[1]:>9.3f} ± {se[1]:.3f}{frac:>9.1%}")
            if a.check and rule == "row-major" and not m[0] < -5 * se[0]:
                ok = False
            if a.check and rule == "jetpipe" and not (np.abs(m) <= 4 * se).all():
                ok = False
        print()
    if not ok:
        print("tie_bias: check failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
