#!/usr/bin/env bash
# Benchmarks (not part of the test suite). Writes a full-size random f16 SD1.5 checkpoint into
# $BENCH_DIR (default /tmp/sdc-bench, ~2.1 GB) and measures, on this machine:
#   1. bench_ops: GEMM / conv2d GFLOP/s, optimized vs the plain C reference (same run)
#   2. mkmodel --full --dtype f16 time
#   3. bench_model: load time, RSS after load, text encoder for one prompt, one UNet call
#   4. sdc bench: whole generations at 512x512 and 320x480 in both memory modes: per-stage seconds,
#      median UNet step, GFLOP/s per op kind against the measured FMA peak, peak RSS
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

echo "== sdc bench: 512x512 and 320x480, $STEPS steps DPM++ 2M, CFG 7, threads $THREADS, normal and --low-memory"
# one fresh process per run (peak RSS of that run alone); the table here, JSON lines in the file
rm -f "$DIR/bench.jsonl"
./build/sdc bench -m "$M" --steps "$STEPS" -t "$THREADS" --memory both --json-out "$DIR/bench.jsonl"
echo "(JSON lines in $DIR/bench.jsonl)"
