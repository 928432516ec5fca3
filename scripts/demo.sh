#!/usr/bin/env bash
# The main job on a built-in default: build sdc, write a tiny random-weight SD1.5 checkpoint,
# generate a picture from it and print the stage timing table. The picture is noise (random
# weights); pass a real checkpoint to `sdc txt2img -m` for a real one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x build/sdc ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j"$(nproc)" --target sdc-bin >/dev/null
fi
OUT="${DEMO_DIR:-/tmp/sdc-demo}"
mkdir -p "$OUT"
MODEL="$OUT/sd15-tiny-random-f16.safetensors"
[ -f "$MODEL" ] || ./build/sdc mkmodel --tiny --dtype f16 --seed 1 -o "$MODEL"
./build/sdc info "$MODEL"
./build/sdc txt2img -m "$MODEL" \
    -p "a lighthouse on a cliff at sunset, highly detailed" -n "blurry, low quality" \
    -W 256 -H 256 --steps 20 --cfg 7 --seed 1234 -o "$OUT/demo.png"
echo "picture: $OUT/demo.png (random weights: expect noise)"
