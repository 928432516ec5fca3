#!/usr/bin/env bash
# tests/cli/full_calib.sh: `sdc deploy` at the deployment size from a full-size checkpoint.
# Writes a full SD1.5 random-weight f16 checkpoint (2.1 GB, into TMPDIR, deleted afterwards), runs
# `sdc deploy` at -W 320 -H 480 with 2 steps and 1 prompt, and checks: the three ONNX files (the
# UNet with external data), 4 UNet samples (2 steps x cond/uncond) of [1, 4, 60, 40] +
# [1, 77, 768] + [1, 1280], 2 text rows, 1 VAE latent, the manifest's 320x480 and 0.18215; then
# `sdc export --check` on the kit: every model under ONNX Runtime within 1e-4 * max(1, max|ref|)
# of sdc and through onnx.checker (skipped with a message when node / python3-onnx are absent).
# Prints the times and sizes. Labelled "slow" (the name starts with "full").
. "$(dirname "$0")/lib/common.bash"
trap 'rm -rf "$T"' EXIT
M=$T/full-f16.safetensors
D=$T/kit
printf 'a photograph of an astronaut riding a horse, (detailed:1.2)\tblurry, lowres\n' >"$T/prompts.txt"
if "$SDC" mkmodel --full --dtype f16 --seed 1 -o "$M" >"$T/mk.txt" 2>&1; then pass; else fail "mkmodel --full"; cat "$T/mk.txt" >&2; fi
t0=$(date +%s.%N)
if "$SDC" deploy -m "$M" --prompts "$T/prompts.txt" -W 320 -H 480 --steps 2 -o "$D" >"$T/dep.txt" 2>&1; then pass; else fail "deploy"; cat "$T/dep.txt" >&2; fi
t1=$(date +%s.%N)
sed 's/^/  /' "$T/dep.txt"
echo "  deploy wall time: $(echo "$t1 - $t0" | bc) s"
[ "$(ls "$D" | tr '\n' ' ')" = "calib manifest.json pulsar2 text_encoder.onnx time_embedding.npy unet.onnx unet.onnx.data vae_decoder.onnx " ] &&
    pass || fail "kit holds: $(ls "$D" | tr '\n' ' ')"
[ "$(tar tf "$D/calib/unet_numpyobject.tar" 2>/dev/null | wc -l)" = 4 ] && pass || fail "unet samples"
[ "$(tar tf "$D/calib/text_encoder/input_ids.tar" 2>/dev/null | wc -l)" = 2 ] && pass || fail "text samples"
[ "$(tar tf "$D/calib/vae_decoder/latent.tar" 2>/dev/null | wc -l)" = 1 ] && pass || fail "vae samples"
# member sizes: 128-byte npy header + data
[ "$(tar tvf "$D/calib/unet/sample.tar" | awk 'NR==1{print $3}')" = $((128 + 4 * 4 * 60 * 40)) ] && pass || fail "sample member size"
[ "$(tar tvf "$D/calib/unet/encoder_hidden_states.tar" | awk 'NR==1{print $3}')" = $((128 + 4 * 77 * 768)) ] && pass ||
    fail "context member size"
[ "$(tar tvf "$D/calib/unet/time_embedding.tar" | awk 'NR==1{print $3}')" = $((128 + 4 * 1280)) ] && pass || fail "temb member size"
grep -q '"image": {"width": 320, "height": 480' "$D/manifest.json" && grep -q '"vae_scale_factor": 0.18215' "$D/manifest.json" &&
    pass || fail "manifest"
ls -l "$D"/*.onnx* "$D"/calib/*.tar "$D"/calib/*/*.tar | awk '{printf "  %12s  %s\n", $5, $9}'
if command -v node >/dev/null 2>&1; then
    if "$SDC" export -m "$M" -W 320 -H 480 -o "$D" --check >"$T/chk.txt" 2>&1; then pass; else fail "export --check"; fi
    cat "$T/chk.txt"
else
    echo "full_calib: node not found: the ONNX Runtime check is skipped"
fi
finish
