#!/usr/bin/env bash
# Installs what sdc needs to build and test on a fresh Debian (run as root, or with sudo).
#   build:  gcc, cmake, libpng (PNG output), zlib (vocabulary, PNG)
#   tests:  clang + libclang-rt (libFuzzer build of the fuzz targets is optional; the corpora
#           replay with gcc too)
#   onnx:   protobuf-c (protoc-c + libprotobuf-c) generates ONNX's C code from the onnx.proto of
#           libonnx-dev (cmake/onnx.cmake)
#   ort:    node + npm, then ONNX Runtime (npm onnxruntime-node, which ships its native library)
#           and jpeg-js into the git-ignored ./node_modules: the reference that tests/cli/vaelight.sh
#           compares sdc's vaelight decoder with (tests/ort/*.js)
#   arm64:  the AArch64 cross build that scripts/test.sh runs under user-mode QEMU
#           (cmake/aarch64-linux-gnu.cmake): gcc-aarch64-linux-gnu, qemu-user, and the target's
#           zlib, libpng and protobuf-c from Debian's arm64 multiarch archive (adds that architecture)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS="build-essential cmake pkg-config libpng-dev zlib1g-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev python3-onnx"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then PKGS="$PKGS nodejs npm"; fi
PKGS="$PKGS gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user zlib1g-dev:arm64 libpng-dev:arm64 libprotobuf-c-dev:arm64"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then $SUDO dpkg --add-architecture arm64; fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq $missing >/dev/null
fi
echo "setup: build dependencies present ($PKGS)"

# ONNX Runtime for the tests, pinned, into ./node_modules (no install scripts: the CPU library
# is inside the package). Skipped when that version is already there.
ORT_VERSION=1.30.0
JPEGJS_VERSION=0.4.4
cd "$(dirname "$0")/.."
if ! grep -qs "\"version\": \"$ORT_VERSION\"" node_modules/onnxruntime-node/package.json ||
   ! grep -qs "\"version\": \"$JPEGJS_VERSION\"" node_modules/jpeg-js/package.json; then
    npm install --prefix "$(pwd)" --ignore-scripts --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
        "onnxruntime-node@$ORT_VERSION" "jpeg-js@$JPEGJS_VERSION" >/dev/null
fi
echo "setup: onnxruntime-node $ORT_VERSION and jpeg-js $JPEGJS_VERSION in $(pwd)/node_modules"
