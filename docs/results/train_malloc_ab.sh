#!/bin/bash
# The end-to-end A/B of train::malloc in docs/performance.md ("Keeping freed memory"):
# `pipeline train` of one YAML with glibc's malloc defaults (GLIBC_TUNABLES with a default
# value, which makes jetpipe keep the C library's settings) against jetpipe's settings, on 1
# and 2 threads, interleaved REPS times. Prints wall time, peak resident memory and the
# epoch line (the losses must agree: the allocator does not change the arithmetic).
# Usage: P=target/debug/pipeline CONFIG=my_train.yaml W=/tmp/mab docs/results/train_malloc_ab.sh
# CONFIG: a training YAML with a short epoch (epochs: 1, max_steps: 150 in the measurement).
set -euo pipefail
P=${P:-target/release/pipeline}
CONFIG=${CONFIG:?a training YAML}
W=${W:-/tmp/mab}
REPS=${REPS:-2}
mkdir -p "$W/runs"
for rep in $(seq "$REPS"); do
  for t in 1 2; do
    for mode in default kept; do
      d="$W/runs/${mode}_t${t}_r$rep"
      rm -rf "$d"
      sed "s|^  run_dir: .*|  run_dir: $d|" "$CONFIG" > "$W/cfg_$mode.yaml"
      if [ $mode = default ]; then tun=glibc.malloc.tcache_count=7; else tun=; fi
      GLIBC_TUNABLES=$tun RAYON_NUM_THREADS=$t /usr/bin/time -f "TIME %e s maxrss %M KB" \
        "$P" train "$W/cfg_$mode.yaml" > "$d.log" 2>&1
      echo "$mode threads=$t rep=$rep $(grep TIME "$d.log") $(grep 'jets/s' "$d.log" | tail -1)"
    done
  done
done
