#!/bin/bash
# Reproduces the "Results: 20,000 generator jets" tables of docs/generative.md
# (about 2.5 hours on 2 cores). Run from the repository root with the generator's venv
# (data-samples/README.md) as GENV and a built `pipeline` as P. W is a scratch directory.
set -euo pipefail
P=${P:-target/debug/pipeline}
GENV=${GENV:-/tmp/genv}
W=${W:-/tmp/big}
mkdir -p "$W"
root=$(pwd)
# pythia8mc fails to import from the repository root: generate from the scratch directory.
(cd "$W" && "$GENV/bin/python" "$root/data-samples/generator/generate.py" qg --n 20000 --seed 7 --workers 2 --out "$W/qg_s7_20k.h5")
sed -e "s|files: \[data-samples/qg_sample.h5\]|files: [$W/qg_s7_20k.h5]|" \
    -e "s|path: out/qg1024 |path: $W/out/qg20k |" -e 's|resolutions: \[256, 512, 768, 1024\]|resolutions: [1024]|' \
    -e 's|^name: qg1024|name: qg20k|' pipelines/qg1024.yaml > "$W/conv.yaml"
sed -e "s|runs/qg_vae|$W/runs/vae|" -e "s|dataset: out/qg1024|dataset: $W/out/qg20k|" -e 's|epochs: 20|epochs: 12|' \
    pipelines/qg_train_vae.yaml > "$W/vae.yaml"
# The DDPM at CPU size: base 16, 5 epochs (1,250 steps) with the cosine learning rate over them.
sed -e "s|runs/qg_ddpm|$W/runs/ddpm_v|" -e "s|dataset: out/qg1024|dataset: $W/out/qg20k|" -e 's|base: 32 |base: 16 |' \
    -e 's|epochs: 20|epochs: 5|' -e 's|lr: 0.0002|lr: 0.0005|' -e 's|ema: 0.999|ema: 0.995|' \
    -e 's|early_stopping: 5|early_stopping: 0|' -e 's|prediction: [a-z]*|prediction: v|' \
    -e 's|transforms: \[log1p, {scale: 0.5}, {zero: -1}\].*|transforms: [log1p, {scale: 0.5}]|' \
    pipelines/qg_train_ddpm.yaml > "$W/ddpm_v.yaml"
grep -q 'prediction: v' "$W/ddpm_v.yaml"
# The same DDPM predicting ε (Ho et al.): the ablation of the target at equal data and steps.
sed -e "s|ddpm_v|ddpm_eps|" -e 's|prediction: v |prediction: epsilon |' "$W/ddpm_v.yaml" > "$W/ddpm_eps.yaml"
grep -q 'prediction: epsilon' "$W/ddpm_eps.yaml"
# v with the empty pixels apart from the hits ({zero: -1} after log1p and scale), 4 epochs.
sed -e "s|ddpm_v|ddpm_vz|" -e 's|transforms: \[log1p, {scale: 0.5}\]|transforms: [log1p, {scale: 0.5}, {zero: -1}]|' \
    -e 's|epochs: 5|epochs: 4|' "$W/ddpm_v.yaml" > "$W/ddpm_vz.yaml"
grep -q 'zero: -1' "$W/ddpm_vz.yaml"
# The conditioning check: the features baseline on the 14 observables of `pipeline generate`.
{ sed -e "s|runs/qg_baseline|$W/runs/obs_baseline|" -e "s|dataset: out/qg1024|dataset: $W/out/qg20k|" \
    -e 's|resolution: 256|resolution: 1024|' -e 's|epochs: 50|epochs: 30|' pipelines/qg_train_baseline.yaml | grep -v '^#'
  echo '  jet_inputs: [n_hits, hits_tracks, hits_ecal, hits_hcal, sum_tracks, sum_ecal, sum_hcal, sum_total, width_total, ptd_total, lead_frac, core_frac, axis_major, axis_minor]'
} > "$W/obs_baseline.yaml"
cd "$W"
"$P" run conv.yaml -q
# The trainings side by side, one thread each (the 2 cores shared). As measured: the VAE,
# the ε and the v DDPM started together; the ε DDPM was stopped during its 4th epoch (its
# best checkpoint is epoch 3's, 744 steps) and the v + zero DDPM started in its place once
# the VAE had finished.
export RAYON_NUM_THREADS=1
"$P" train vae.yaml > vae.log 2>&1 &
"$P" train ddpm_eps.yaml > ddpm_eps.log 2>&1 &
"$P" train ddpm_v.yaml > ddpm_v.log 2>&1 &
wait
"$P" train ddpm_vz.yaml > ddpm_vz.log 2>&1
"$P" train obs_baseline.yaml
"$P" eval runs/obs_baseline --subset test
unset RAYON_NUM_THREADS
# Sampling as measured: the VAE, ε and v runs together (one thread, while v + zero trained),
# then the VAE and v + zero (both threads); the real jets and references are the same.
RAYON_NUM_THREADS=1 "$P" generate runs/vae runs/ddpm_eps runs/ddpm_v --out gen --jets 512
RAYON_NUM_THREADS=1 "$P" reconstruct runs/vae runs/ddpm_eps runs/ddpm_v --out recon --jets 512 --t0 0.3,0.6
"$P" generate runs/vae runs/ddpm_vz --out gen_vz --jets 512
"$P" reconstruct runs/vae runs/ddpm_vz --out recon_vz --jets 512 --t0 0.3,0.6
"$P" generate runs/ddpm_vz --out gen_vz_g2 --jets 512 --guidance 2
# The conditioning check: the observables classifier on each set with its labels.
for s in gen/real gen/vae gen/ddpm_eps gen/ddpm_v gen_vz/ddpm_vz gen_vz_g2/ddpm_vz; do
  "$P" eval runs/obs_baseline --dataset $s/dataset --subset all --tag "$(echo $s | tr / _)"
done
python3 "$root/docs/generative/tables.py" gen/metrics.json gen_vz/metrics.json recon/metrics.json recon_vz/metrics.json
# Hits and energy per jet and channel of each generated set.
for s in gen/real gen/vae gen/ddpm_v gen_vz/ddpm_vz; do
  "$P" sql -d $s/dataset "SELECT '$s' AS set_, avg(hits_tracks), avg(hits_ecal), avg(hits_hcal), avg(sum_tracks), avg(sum_ecal), avg(sum_hcal) FROM jets"
done
