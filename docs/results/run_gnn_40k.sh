#!/bin/bash
# Reproduces the graph-network table of docs/results.md ("Graph networks on the stored kNN
# graphs"): the 40k distinct generator jets (seeds 7 and 8), the independent seed-9 set, the
# features baseline, ResNet-PC 1024_M, the four GINIE graph networks and ParticleNet-Lite
# (static and dynamic), all with `jet_inputs: [m0, pt]` (the baseline reads all 30 columns).
# About 5 hours on 2 cores.
# Run from the repository root with the generator's venv (data-samples/README.md) as GENV
# and a release `pipeline` as P (cargo build --release). W is a scratch directory.
set -euo pipefail
P=${P:-$(pwd)/target/release/pipeline}   # release: the debug build converts about 35x slower
GENV=${GENV:-/tmp/genv}
W=${W:-/tmp/g40}
EPOCHS_GNN=${EPOCHS_GNN:-12}
EPOCHS_GAT=${EPOCHS_GAT:-3}
EPOCHS_PN=${EPOCHS_PN:-10}
mkdir -p "$W"
root=$(pwd)
gen() { # seed workers: pythia8mc fails to import from the repository root, so run in $W
  (cd "$W" && "$GENV/bin/python" "$root/data-samples/generator/generate.py" qg --n 20000 \
    --seed "$1" --workers "$2" --out "$W/qg_s$1_20k.h5")
}
conv() { # name files...: the main job with only the input and output changed
  local name=$1; shift
  sed -e "s|^  files: .*|  files: [$(echo "$@" | sed 's/ /, /g')]|" \
      -e "s|^  path: out/qg1024 |  path: $W/out/$name |" -e "s|^name: qg1024|name: $name|" \
      pipelines/qg1024.yaml > "$W/conv_$name.yaml"
}
conv gen40 "$W/qg_s7_20k.h5" "$W/qg_s8_20k.h5"
conv gen_s9 "$W/qg_s9_20k.h5"
sed -e "s|run_dir: runs/qg_baseline|run_dir: $W/runs/b40|" -e "s|dataset: out/qg1024|dataset: $W/out/gen40|" \
    pipelines/qg_train_baseline.yaml > "$W/b40.yaml"
sed -e 's|model: {resnet_pc: 256_S}|model: {resnet_pc: 1024_M}|' -e "s|run_dir: runs/qg_256s|run_dir: $W/runs/h40_1024_M|" \
    -e 's|^  epochs: 20|  epochs: 8|' -e 's|scheduler: plateau|scheduler: cosine|' \
    -e 's|jet_inputs: null |jet_inputs: [m0, pt] |' -e "s|dataset: out/qg1024|dataset: $W/out/gen40|" \
    -e 's|resolution: 256|resolution: 1024|' pipelines/qg_train_256s.yaml > "$W/h40_1024_M.yaml"
for c in gcn sage gin gat; do
  e=$EPOCHS_GNN; [ $c = gat ] && e=$EPOCHS_GAT
  sed -e "s|conv: gcn |conv: $c |" -e "s|run_dir: runs/qg_gnn_gcn|run_dir: $W/runs/g40_$c|" \
      -e "s|^  epochs: 20|  epochs: $e|" -e 's|scheduler: plateau|scheduler: cosine|' \
      -e "s|dataset: out/qg1024|dataset: $W/out/gen40|" pipelines/qg_train_gnn.yaml > "$W/g40_$c.yaml"
done
for m in dyn static; do
  d=true; [ $m = static ] && d=false
  sed -e "s|dynamic: true |dynamic: $d |" -e "s|run_dir: runs/qg_particlenet_lite|run_dir: $W/runs/pl40_$m|" \
      -e "s|^  epochs: 20|  epochs: $EPOCHS_PN|" -e 's|scheduler: plateau|scheduler: cosine|' \
      -e "s|dataset: out/qg1024|dataset: $W/out/gen40|" pipelines/qg_train_particlenet_lite.yaml > "$W/pl40_$m.yaml"
done
grep -q 'resnet_pc: 1024_M' "$W/h40_1024_M.yaml"; grep -q 'conv: gat ' "$W/g40_gat.yaml"
grep -q 'dynamic: false ' "$W/pl40_static.yaml"
cd "$W"
# As measured: seed 8 with both cores, then seed 9 on one core while the other trained.
[ -f qg_s7_20k.h5 ] || gen 7 2
[ -f qg_s8_20k.h5 ] || gen 8 2
"$P" run conv_gen40.yaml -q
export RAYON_NUM_THREADS=1
( [ -f qg_s9_20k.h5 ] || gen 9 1; "$P" run conv_gen_s9.yaml -q; "$P" train h40_1024_M.yaml > h40_1024_M.log 2>&1 ) &
"$P" train b40.yaml > b40.log 2>&1
for c in gcn sage gin gat; do "$P" train g40_$c.yaml > g40_$c.log 2>&1; done
wait
# ParticleNet-Lite, the two graphs side by side (one thread each).
"$P" train pl40_dyn.yaml > pl40_dyn.log 2>&1 &
"$P" train pl40_static.yaml > pl40_static.log 2>&1
wait
runs="runs/b40 runs/h40_1024_M runs/g40_gcn runs/g40_sage runs/g40_gin runs/g40_gat runs/pl40_static runs/pl40_dyn"
for r in $runs; do
  "$P" eval $r --subset test
  "$P" eval $r --dataset out/gen_s9 --subset all --tag s9
done
"$P" compare $runs --out roc_compare_gnn_40k.png
"$P" compare $runs --tag s9 --out roc_compare_gnn_s9.png
# The same, with ResNet-PC 1024_M as the reference.
"$P" compare runs/h40_1024_M runs/g40_gcn runs/g40_sage runs/g40_gin runs/g40_gat runs/pl40_static runs/pl40_dyn \
  --tag s9 --out roc_gnn_vs_resnet_s9.png
# ParticleNet-Lite's dynamic graph against its static one, and against GraphSAGE.
"$P" compare runs/pl40_static runs/pl40_dyn runs/g40_sage --tag s9 --out roc_particlenet_s9.png
# GCN against SAGE and GIN (the 0.0142 ± 0.0008 of docs/results.md).
"$P" compare runs/g40_gcn runs/g40_sage runs/g40_gin --tag s9 --out roc_gcn_sage_gin_s9.png
