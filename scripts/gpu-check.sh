#!/usr/bin/env bash
# The one-call GPU check, run on a lent GPU machine (no Rust there) through the device tool:
#   run(command="bash scripts/gpu-check.sh", carry=[".gpu"], timeout_s=420)
# after scripts/gpu-build.sh here has put the stripped CUDA release binary in .gpu/pipeline.xz.
# Rehearsal on any machine (no GPU needed): GPU_CHECK_DEVICE=cpu bash scripts/gpu-check.sh
# Everything it measures goes to $OUT (default /tmp/gpu-check):
#   gpu.txt           the GPU, driver, CUDA libraries found, the binary's version
#   device_check.txt  every model family trained 4 steps on the CPU and on CUDA from the same
#                     weights and batch: both losses, their largest relative difference, s/step
#   resnet_1024M.txt  ResNet-PC 1024_M, batch 64: Burn-CUDA s/step (device-check, 30 steps)
#                     and PyTorch's on the same GPU and shapes (benches/torch_resnet_step.py)
#   train.csv         each committed pipelines/qg_train_*.yaml trained on CUDA on the committed
#                     sample (the same YAML as on the CPU but `device: cuda`, its own run
#                     directory and a few epochs): epochs, train jets/s, last train loss, best
#                     validation AUC (classifiers) or loss (generative models)
#   runs/             the runs' metrics.csv and logs
# Each phase has its own time limit, so a hang in one still leaves the others' results, and
# no training starts after GPU_CHECK_DEADLINE seconds (300): the call ends within ~6 minutes.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT/runs"
EPOCHS="${GPU_CHECK_EPOCHS:-20}"
DEADLINE="${GPU_CHECK_DEADLINE:-300}"   # seconds after which no further training starts
# The device checked (cuda on a lent GPU; cpu or wgpu to rehearse the script on any machine).
DEV="${GPU_CHECK_DEVICE:-cuda}"
log() { echo "== $*" | tee -a "$OUT/gpu.txt"; }

# The CUDA libraries: the driver's, the toolkit's and the pip wheels' (NVRTC compiles Burn's
# kernels at run time).
py=python3
site="$($py -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib "$site"/nvidia/*/lib \
         "$site"/nvidia/cu13/lib; do
  [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH
export CUDA_PATH="${CUDA_PATH:-/usr/local/cuda}"

log "GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/gpu.txt"
ls "$CUDA_PATH"/lib64/libnvrtc.so* 2>&1 | head -3 | tee -a "$OUT/gpu.txt"
bin=/tmp/jetpipe-gpu/pipeline
mkdir -p "$(dirname "$bin")"
$py -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.gpu/pipeline.xz'),open('$bin','wb'))" || exit 1
chmod +x "$bin"
ldd "$bin" | grep -E 'not found' | tee -a "$OUT/gpu.txt"
"$bin" --version | tee -a "$OUT/gpu.txt"

log "device check: every family, CPU against CUDA"
RUST_BACKTRACE=1 timeout 90 "$bin" device-check --device "$DEV" --steps 4 2>&1 | tee "$OUT/device_check.txt"

log "ResNet-PC 1024_M, batch 64: Burn on CUDA and PyTorch on CUDA"
RUST_BACKTRACE=1 timeout 60 "$bin" device-check --device "$DEV" --steps 30 --batch 64 \
  --models '{"resnet_pc": "1024_M"}' 2>&1 | tee "$OUT/resnet_1024M.txt"
shape='{"kernel":1,"stride":1,"padding":0,"channels":8,"blocks":[16,32,64,128,128,256,1024]}'
timeout 60 $py benches/torch_resnet_step.py --shape "$shape" --resolution 1024 --features 9 \
  --batch 64 --threads "$(nproc)" --secs 5 --device "$([ "$DEV" = cuda ] && echo cuda || echo cpu)" 2>&1 | tee -a "$OUT/resnet_1024M.txt"

log "training every committed model YAML on CUDA (committed sample, $EPOCHS epochs)"
timeout 60 "$bin" run pipelines/qg1024.yaml -q --overwrite 2>&1 | tail -3 | tee -a "$OUT/gpu.txt"
echo "model,status,epochs,train_jets_per_s,last_train_loss,best_val_auc,best_val_loss" > "$OUT/train.csv"
for yaml in pipelines/qg_train_*.yaml; do
  name="$(basename "$yaml" .yaml)"
  if [ "$SECONDS" -gt "$DEADLINE" ]; then   # keep the call inside its ~6 minutes
    echo "$name,skipped (past ${DEADLINE} s),,,,," | tee -a "$OUT/train.csv"
    continue
  fi
  run="/tmp/jetpipe-gpu/runs/$name"
  sed -E -e "s#^(  device:) cpu#\1 $DEV#" -e "s#^(  run_dir:) .*#\1 $run#" \
      -e "s#^(  epochs:) [0-9]+#\1 $EPOCHS#" "$yaml" > "/tmp/jetpipe-gpu/$name.yaml"
  RUST_BACKTRACE=1 timeout 30 "$bin" train "/tmp/jetpipe-gpu/$name.yaml" -q \
    > "$OUT/runs/$name.log" 2>&1
  status=$?
  cp "$run/metrics.csv" "$OUT/runs/$name.metrics.csv" 2>/dev/null
  $py - "$name" "$status" "$run/metrics.csv" >> "$OUT/train.csv" <<'PY'
import csv, sys
name, status, path = sys.argv[1:4]
try:
    rows = list(csv.DictReader(open(path)))
except OSError:
    rows = []
def num(r, k):
    try:
        return float(r[k])
    except (KeyError, ValueError, TypeError):
        return None
aucs = [num(r, "val_auc") for r in rows if num(r, "val_auc") is not None]
losses = [num(r, "val_loss") for r in rows if num(r, "val_loss") is not None]
speed = [num(r, "samples_per_s") for r in rows[1:] or rows]
speed = [s for s in speed if s is not None]
fmt = lambda v: "" if v is None else f"{v:.4g}"
print(",".join([name, "ok" if status == "0" else f"exit {status}", str(len(rows)),
                fmt(max(speed) if speed else None),
                fmt(num(rows[-1], "train_loss") if rows else None),
                fmt(max(aucs) if aucs else None), fmt(min(losses) if losses else None)]))
PY
  tail -1 "$OUT/train.csv"
done
log "done"
