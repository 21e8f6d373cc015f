#!/bin/bash
# The transformers on the 40k generator jets and the seed-9 set (docs/results.md,
# "Transformers", issue 19): the particle transformer (the committed CPU-sized default) and
# the Aggregation Transformer 256_S with and without the padding mask, all with
# `jet_inputs: [m0, pt]` and a cosine schedule, against the baseline and ResNet-PC 1024_M of
# docs/results/run_gnn_40k.sh (run that first: it makes $W/out/gen40, $W/out/gen_s9,
# $W/runs/b40 and $W/runs/h40_1024_M).
# The CPU runs of docs/results.md, one thread per run, two side by side: first
# EPOCHS_PART=2 EPOCHS_AGG=1 AGG_MASKS=true (about 1 h 40 min on 2 cores, evaluations
# included), then EPOCHS_PART=4 PART_RUN=t40_part4 AGG_MASKS=false (about 2 h 20 min). On a
# GPU (docs/gpu.md), DEVICE=cuda and more epochs.
# Run from the repository root with a `pipeline` as P. W is the scratch directory.
set -euo pipefail
P=${P:-target/release/pipeline}
W=${W:-/tmp/g40}
EPOCHS_PART=${EPOCHS_PART:-2}
EPOCHS_AGG=${EPOCHS_AGG:-1}
AGG_MASKS=${AGG_MASKS:-true false}
DEVICE=${DEVICE:-cpu}
PART_RUN=${PART_RUN:-t40_part}
sed -e "s|run_dir: runs/qg_part|run_dir: $W/runs/$PART_RUN|" -e "s|^  epochs: 20|  epochs: $EPOCHS_PART|" \
    -e "s|device: cpu |device: $DEVICE |" \
    -e "s|dataset: out/qg1024|dataset: $W/out/gen40|" pipelines/qg_train_part.yaml > "$W/$PART_RUN.yaml"
for m in $AGG_MASKS; do
  sed -e "s|run_dir: runs/qg_agg256s|run_dir: $W/runs/t40_agg_mask_$m|" -e "s|mask: true |mask: $m |" \
      -e "s|^  epochs: 20|  epochs: $EPOCHS_AGG|" -e 's|scheduler: plateau|scheduler: cosine|' \
      -e 's|jet_inputs: null |jet_inputs: [m0, pt] |' -e "s|device: cpu |device: $DEVICE |" \
      -e "s|dataset: out/qg1024|dataset: $W/out/gen40|" pipelines/qg_train_agg256s.yaml > "$W/t40_agg_mask_$m.yaml"
  grep -q "mask: $m " "$W/t40_agg_mask_$m.yaml"
done
grep -q "epochs: $EPOCHS_PART" "$W/$PART_RUN.yaml"
cd "$W"
export RAYON_NUM_THREADS=1
runs="runs/$PART_RUN"
"$P" train "$PART_RUN.yaml" > "$PART_RUN.log" 2>&1 &
for m in $AGG_MASKS; do
  "$P" train "t40_agg_mask_$m.yaml" > "t40_agg_mask_$m.log" 2>&1
  runs="$runs runs/t40_agg_mask_$m"
done
wait
for r in $runs; do
  "$P" eval "$r" --subset test
  "$P" eval "$r" --dataset out/gen_s9 --subset all --tag s9
done
"$P" compare runs/b40 runs/h40_1024_M runs/pl40_static $runs --out roc_compare_transformers_40k.png
"$P" compare runs/b40 runs/h40_1024_M runs/pl40_static $runs --tag s9 --out roc_compare_transformers_s9.png
"$P" compare runs/h40_1024_M $runs --tag s9 --out roc_transformers_vs_resnet_s9.png
