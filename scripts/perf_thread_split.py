#!/usr/bin/env python3
"""Splits a `perf record -s` profile of a multi-threaded Burn training step by thread and by
kind of work (docs/performance.md, "Two threads": issue 26's closing profile).

    perf record -F 999 -s -o t2.data BENCH --bench        # BENCH: the train_step binary
    perf report -i t2.data --sort pid,symbol --stdio | python3 scripts/perf_thread_split.py 2

(the argument: the rayon threads of the run, RAYON_NUM_THREADS).

The thread with the most samples that are not matrix products is the one that runs the step
(the bench's main thread, or the rayon worker that `ThreadPool::install` runs it on); the
others only ever run work that burn-flex hands to rayon. Prints each thread's share of all
samples and, per thread, the share of each kind of work, then the bound that the split puts
on the speed-up over one thread (Amdahl: the serial share runs alone, the rest on all
threads).
"""

import re
import sys
from collections import defaultdict

KINDS = [
    ("matrix products (gemm)", ("gemm",)),
    ("copies (memmove, copy_2d_tiled, slices)", ("memmove", "memcpy", "copy_", "slice_write")),
    ("zero fills (memset, filled)", ("memset", "filled")),
    (
        "element-wise and reductions",
        ("mask_where", "zip", "macerator", "unary", "binary", "scalar_op", "reduce", "sum_"),
    ),
    ("rayon scheduling", ("rayon", "crossbeam")),
]


def kind(symbol: str) -> str:
    if "[k]" in symbol:
        return "kernel (page faults, scheduling)"
    for name, keys in KINDS:
        if any(k in symbol for k in keys):
            return name
    return "other (autodiff, allocation, …)"


def main() -> None:
    share = defaultdict(float)  # (tid, kind) -> % of all samples
    for line in sys.stdin:
        m = re.match(r"\s*([\d.]+)%\s+(\d+):\S+\s+(.*)", line)
        if m:
            share[(m.group(2), kind(m.group(3)))] += float(m.group(1))
    if not share:
        sys.exit("no `pid,symbol` rows on stdin (perf report --sort pid,symbol --stdio)")
    threads = sorted({t for t, _ in share}, key=lambda t: -sum(v for (u, _), v in share.items() if u == t))
    total = {t: sum(v for (u, _), v in share.items() if u == t) for t in threads}
    non_gemm = {t: total[t] - share.get((t, KINDS[0][0]), 0.0) for t in threads}
    main_t = max(threads, key=lambda t: non_gemm[t])
    kinds = sorted({k for _, k in share}, key=lambda k: -sum(v for (_, j), v in share.items() if j == k))
    print(f"{'kind of work':<42}" + "".join(f"{'thread ' + t:>14}" for t in threads))
    for k in kinds:
        print(f"{k:<42}" + "".join(f"{share.get((t, k), 0.0):>13.1f}%" for t in threads))
    print(f"{'all':<42}" + "".join(f"{total[t]:>13.1f}%" for t in threads))
    serial = total[main_t] / 100.0
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    bound = 1.0 / (serial + (1.0 - serial) / max(n, 1))
    print(
        f"\nthe step's thread: {main_t} ({total[main_t]:.1f} % of the samples); "
        f"if its work stays serial and the rest spreads over {n} threads, "
        f"the speed-up over one thread is at most {bound:.2f}×"
    )


if __name__ == "__main__":
    main()
