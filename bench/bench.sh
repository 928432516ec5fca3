#!/usr/bin/env bash
# Benchmarks (not part of the test suite). Writes a full-size random f16 SD1.5 checkpoint into
# $BENCH_DIR (default /tmp/sdc-bench, ~2.1 GB) and measures, on this machine:
#   1. bench_ops: GEMM / conv2d GFLOP/s, optimized vs the plain C reference (same run)
#   2. mkmodel --full --dtype f16 time
#   3. bench_model: load time, RSS after load, text encoder for one prompt, one UNet call
#   4. txt2img at 512x512 and 320x480 (a few steps), with stage timings and peak RSS
# Usage: bash bench/bench.sh [THREADS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-$(nproc)}"
STEPS="${2:-4}"
DIR="${BENCH_DIR:-/tmp/sdc-bench}"
mkdir -p "$DIR"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
M="$DIR/sd15-full-random-f16.safetensors"

echo "== kernels"
./build/bench_ops || true

echo "== mkmodel --full --dtype f16"
if [ ! -f "$M" ]; then
    /usr/bin/time -f "mkmodel: %e s, peak RSS %M KB" ./build/sdc mkmodel --full --dtype f16 --seed 1 -o "$M"
fi
./build/sdc info "$M"

echo "== load, text encoder, one UNet call (threads $THREADS)"
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
./build/bench_model "$M" "$THREADS"

for size in "512 512" "320 480"; do
    set -- $size
    echo "== txt2img ${1}x${2}, $STEPS steps, threads $THREADS"
    /usr/bin/time -f "peak RSS %M KB, wall %e s" ./build/sdc txt2img -m "$M" -p "a photo of a cat" \
        -W "$1" -H "$2" --steps "$STEPS" -t "$THREADS" -o "$DIR/bench_${1}x${2}.png"
done
