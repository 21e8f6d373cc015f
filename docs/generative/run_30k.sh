#!/bin/bash
# Reproduces the "Results: 30,000 distinct generator jets" tables of docs/generative.md
# (about 2.5 hours on 2 cores). Run from the repository root with the generator's venv
# (data-samples/README.md) as GENV and a built `pipeline` as P. W is a scratch directory.
# The DDPM run of the tables was stopped after its third epoch (of 5, cosine over 5): kill
# the DDPM training once `epoch   2` is printed; its best checkpoint is that epoch.
set -euo pipefail
P=${P:-target/debug/pipeline}
GENV=${GENV:-/tmp/genv}
W=${W:-/tmp/big}
mkdir -p "$W"
root=$(pwd)
# pythia8mc fails to import from the repository root: generate from the scratch directory.
(cd "$W" && "$GENV/bin/python" "$root/data-samples/generator/generate.py" qg --n 20000 --seed 7 --out "$W/qg_s7_20k.h5")
(cd "$W" && "$GENV/bin/python" "$root/data-samples/generator/generate.py" qg --n 10000 --seed 8 --out "$W/qg_s8_10k.h5")
sed -e "s|files: \[data-samples/qg_sample.h5\]|files: [$W/qg_s7_20k.h5, $W/qg_s8_10k.h5]|" \
    -e "s|path: out/qg1024 |path: $W/out/qg30k |" -e 's|resolutions: \[256, 512, 768, 1024\]|resolutions: [1024]|' \
    -e 's|^name: qg1024|name: qg30k|' pipelines/qg1024.yaml > "$W/conv.yaml"
sed -e "s|runs/qg_vae|$W/runs/vae|" -e "s|dataset: out/qg1024|dataset: $W/out/qg30k|" -e 's|epochs: 20|epochs: 12|' \
    pipelines/qg_train_vae.yaml > "$W/vae.yaml"
sed -e "s|runs/qg_ddpm|$W/runs/ddpm|" -e "s|dataset: out/qg1024|dataset: $W/out/qg30k|" -e 's|base: 32 |base: 16 |' \
    -e 's|epochs: 20|epochs: 5|' -e 's|lr: 0.0002|lr: 0.0005|' -e 's|ema: 0.999|ema: 0.995|' \
    -e 's|early_stopping: 5|early_stopping: 0|' pipelines/qg_train_ddpm.yaml > "$W/ddpm.yaml"
# The conditioning check: the features baseline on the 14 observables of `pipeline generate`.
{ sed -e "s|runs/qg_baseline|$W/runs/obs_baseline|" -e "s|dataset: out/qg1024|dataset: $W/out/qg30k|" \
    -e 's|resolution: 256|resolution: 1024|' -e 's|epochs: 50|epochs: 30|' pipelines/qg_train_baseline.yaml | grep -v '^#'
  echo '  jet_inputs: [n_hits, hits_tracks, hits_ecal, hits_hcal, sum_tracks, sum_ecal, sum_hcal, sum_total, width_total, ptd_total, lead_frac, core_frac, axis_major, axis_minor]'
} > "$W/obs_baseline.yaml"
cd "$W"
"$P" run conv.yaml -q
"$P" train vae.yaml
"$P" train ddpm.yaml          # stopped after `epoch   2` for the tables (see above)
"$P" train obs_baseline.yaml
"$P" eval runs/obs_baseline --subset test
"$P" reconstruct runs/vae runs/ddpm --out recon --jets 512 --t0 0.3,0.6 --invert
"$P" generate runs/vae runs/ddpm --out gen --jets 512
"$P" eval runs/obs_baseline --dataset gen/real/dataset --subset all --tag real_pooled
"$P" eval runs/obs_baseline --dataset gen/ddpm/dataset --subset all --tag ddpm
