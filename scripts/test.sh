#!/usr/bin/env bash
# The test command: builds sdc twice (Release, then Debug with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs the whole ctest suite on each.
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
