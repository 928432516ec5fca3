#!/usr/bin/env bash
# The test command: builds sdc twice (Release, then Debug with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs the whole ctest suite on each; then cross-compiles it for
# AArch64 (NEON kernels) and runs the tests there under qemu-aarch64.
# Golden data is read from ../shared (override with SDC_SHARED_DIR=...).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SDC_SHARED_DIR:-$(cd .. && pwd)/shared}"
JOBS="${JOBS:-$(nproc)}"

echo "== Release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSDC_SHARED_DIR="$SHARED" >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure -j"$JOBS")

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSDC_SANITIZE="address;undefined" \
      -DSDC_SHARED_DIR="$SHARED" >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$JOBS" -LE slow)

echo "== AArch64 cross build (NEON kernels) and tests under qemu-aarch64"
# scripts/setup.sh installs the cross compiler, qemu-user and the arm64 libraries; without them
# this step fails, it is not skipped. User-mode QEMU runs float code ~60x slower than native, so
# besides the slow-labelled tests it leaves to the native runs those that repeat whole generations
# (sampling loops, calibration sets, low-memory mode, bench, the vaelight ONNX Runtime comparison:
# 2-7 CPU minutes each under QEMU); every other test runs, among them the kernels against their
# references and the tiny model's golden text encoder, UNet, VAE and conditioning tests.
# SDC_QEMU_ALL=1 runs all of them (test_txt2img alone: ~7 CPU minutes).
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null || { echo "test.sh: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
done
cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
      -DCMAKE_BUILD_TYPE=Release -DSDC_SHARED_DIR="$SHARED" >/dev/null
cmake --build build-aarch64 -j"$JOBS"
QEMU_EXCLUDE='^(test_txt2img|cli_txt2img|cli_vaelight|test_calib|cli_calib|test_lowmem|cli_bench)$'
if [ -n "${SDC_QEMU_ALL:-}" ]; then QEMU_EXCLUDE='^$'; fi
(cd build-aarch64 && ctest --output-on-failure -j"$JOBS" -LE slow -E "$QEMU_EXCLUDE")
