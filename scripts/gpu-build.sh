#!/usr/bin/env bash
# Builds the binary that scripts/gpu-check.sh runs on a lent GPU machine (which has no Rust):
# the release build with Burn's native CUDA backend, stripped and xz-compressed into
# .gpu/pipeline.xz (an ignored folder; the device tool carries it with `carry: [".gpu"]`).
# Nothing is downloaded during the build but crates and, once, LLVM from PyPI (.ci/llvm).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/.ci/llvm" > /dev/null
# No nvcc here: tell cudarc which CUDA API to bind (the lent machines have CUDA 13.0).
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jetpipe/target}"
"$root/.ci/with-tools" cargo build --release --locked --features cuda
bin="$CARGO_TARGET_DIR/release/pipeline"
"$bin" --version
mkdir -p .gpu
strip -o .gpu/pipeline "$bin"
xz -9 -T2 -f .gpu/pipeline
ls -l .gpu/pipeline.xz
