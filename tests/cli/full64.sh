#!/usr/bin/env bash
# tests/cli/full64.sh: one full-size generation. Writes a full SD1.5 random-weight f16
# checkpoint (2.1 GB, into TMPDIR, deleted afterwards), checks `sdc info` reads it as SD1.5 with
# the exact parameter counts, and runs a 64x64 txt2img with 2 steps through the real-size UNet,
# VAE and text encoder. Labelled "slow": run by the Release pass of scripts/test.sh only.
. "$(dirname "$0")/lib/common.bash"
trap 'rm -rf "$T"' EXIT
M=$T/full-f16.safetensors
if "$SDC" mkmodel --full --dtype f16 --seed 7 -o "$M" >"$T/mk.txt" 2>&1; then pass; else fail "mkmodel --full"; cat "$T/mk.txt" >&2; fi
"$SDC" info "$M" >"$T/info.txt" 2>&1 || fail "info"
grep -qE '^  unet +params 859520964 ' "$T/info.txt" && pass || fail "UNet parameter count"
grep -qE '^  vae +params 83653863 ' "$T/info.txt" && pass || fail "VAE parameter count"
grep -qE '^  text_encoder +params 123060480 ' "$T/info.txt" && pass || fail "text encoder parameter count"
if "$SDC" txt2img -m "$M" -p "a photo of a cat" -W 64 -H 64 --steps 2 --save-latent "$T/z.npy" \
        -o "$T/full.png" >"$T/run.txt" 2>&1; then pass; else fail "txt2img full 64x64"; cat "$T/run.txt" >&2; fi
cat "$T/run.txt"
[ -s "$T/full.png" ] && pass || fail "no picture"
# txt2img refuses to finish on a non-finite latent, so success means activations stayed finite
[ -s "$T/z.npy" ] && pass || fail "no latent"
finish
