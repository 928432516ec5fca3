#!/usr/bin/env bash
# Installs what sdc needs to build and test on a fresh Debian (run as root, or with sudo).
#   build:  gcc, cmake, libpng (PNG output), zlib (vocabulary, PNG)
#   tests:  clang + libclang-rt (libFuzzer build of the fuzz targets is optional; the corpora
#           replay with gcc too)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS="build-essential cmake pkg-config libpng-dev zlib1g-dev"
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
