#!/usr/bin/env bash
# tests/cli/vaelight.sh: `sdc decode --decoder vaelight` on real SD1.5 latents, against ONNX Runtime.
#
#   bash tests/cli/vaelight.sh SDC_EXE SHARED_DIR TMPDIR
#
# Without ONNX Runtime:
# - Axera's calibration tars (pulsar2 NumpyObject members): the default member, --index and
#   --member pick the same latent; an extracted member .npy decodes the same; --all DIR writes one
#   PNG per member of a two-member tar; the shipped data/vaelight copy and the shared file, and
#   1 thread and all, give the same bytes; PNG size is 8x the latent;
# - refusals (exit 1, one line on stderr, nothing on stdout, no output file): VAEencoder.onnx as
#   the decoder, bad options, a missing member, a pickle that calls os.system, a truncated tar,
#   a latent of the wrong shape.
# With node and the npm packages that scripts/setup.sh installs (onnxruntime-node, jpeg-js) --
# skipped, with a message, only when node itself is absent:
# - sdc's image matches ONNX Runtime running VAEpreview.onnx plus Resize(linear, half_pixel) +
#   Sum + Clip (tests/ort/vaelight_ref.js) within 1e-4 relative, on two real 32x32 latents and a
#   non-square 40x24 crop of a 64x64 one; the latent ORT gets is cut from the tar member bytes by
#   this script, independently of sdc's pickle reader;
# - without --latent-scaled, Z * 0.18215 decodes to the same image;
# - example1.jpg -> VAEencoder.onnx (ONNX Runtime) -> sdc's decoder reaches >= 22 dB PSNR.
. "$(dirname "$0")/lib/common.bash"
ORT=$ROOT/tests/ort
VL=$SHARED/models/vaelight
CAL=$SHARED/models/axera-sd15-lcm-calib
# png_size FILE: "WIDTHxHEIGHT" from the IHDR chunk
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d", $3*256+$4, $7*256+$8}'; }
# npy_f32 OUT SHAPE: writes a version 1.0 '<f4' header for SHAPE (e.g. "1, 4, 32, 32"), then stdin
npy_f32() {
    local h="{'descr': '<f4', 'fortran_order': False, 'shape': ($2), }"
    local pad=$(( (64 - (10 + ${#h} + 1) % 64) % 64 ))
    { printf '\223NUMPY\001\000'; printf "\\$(printf %03o $(( (${#h} + pad + 1) % 256 )))\\$(printf %03o $(( (${#h} + pad + 1) / 256 )))";
      printf '%s%*s\n' "$h" $pad ''; cat; } >"$1"
}

T256=$CAL/calib_data_vae_256.tar
T512=$CAL/calib_data_vae_512.tar
M0=datasets/calib_data_vae_256/data_0.npy

# ---- decoding the calibration tars -------------------------------------------------------------
ok "first member" "$SDC" decode --decoder vaelight --latent "$T256" --latent-scaled -o "$T/first.npy"
ok "--index 0" "$SDC" decode --decoder vaelight --latent "$T256" --index 0 --latent-scaled -o "$T/i0.npy"
ok "--member" "$SDC" decode --decoder vaelight --latent "$T256" --member "$M0" --latent-scaled -o "$T/m0.npy"
same_file "--index 0 vs the default member" "$T/first.npy" "$T/i0.npy"
same_file "--member vs --index 0" "$T/m0.npy" "$T/i0.npy"
mkdir -p "$T/x"
tar -xf "$T256" -C "$T/x" datasets/calib_data_vae_256/data_0.npy datasets/calib_data_vae_256/data_3.npy \
    datasets/calib_data_vae_256/data_7.npy
ok "extracted member" "$SDC" decode --decoder vaelight --latent "$T/x/$M0" --latent-scaled -o "$T/x0.npy"
same_file "extracted member vs tar member" "$T/x0.npy" "$T/i0.npy"
ok "--decoder-path" "$SDC" decode --decoder vaelight --decoder-path "$VL/VAEpreview.onnx" \
    --latent "$T256" --latent-scaled -t 1 -o "$T/dp.npy"
same_file "shared file vs shipped copy, 1 thread vs all" "$T/dp.npy" "$T/i0.npy"
ok "png" "$SDC" decode --decoder vaelight --latent "$T256" --index 2 --latent-scaled -o "$T/i2.png"
[ "$(png_size "$T/i2.png")" = 256x256 ] && pass || fail "PNG is $(png_size "$T/i2.png")"
(cd "$T/x" && tar -cf "$T/two.tar" datasets/calib_data_vae_256/data_3.npy datasets/calib_data_vae_256/data_7.npy)
mkdir -p "$T/all"
ok "--all" "$SDC" decode --decoder vaelight --latent "$T/two.tar" --latent-scaled --all "$T/all"
[ "$(ls "$T/all" | tr '\n' ' ')" = "data_3.png data_7.png " ] && pass || fail "--all wrote: $(ls "$T/all")"
grep -q "data_7.npy -> .*/all/data_7.png" "$T/out.txt" && pass || fail "--all did not list data_7"
[ "$(png_size "$T/all/data_3.png")" = 256x256 ] && pass || fail "--all PNG size"

# ---- refusals ------------------------------------------------------------------------------------
expect_refusal -s -n "not the vaelight preview decoder" "encoder as decoder" \
    "$SDC" decode --decoder vaelight --decoder-path "$VL/VAEencoder.onnx" --latent "$T256" -o "$T/r1.npy"
expect_refusal -s -n "expected vae or vaelight" "unknown decoder" "$SDC" decode --decoder taesd --latent "$T256" -o "$T/r2.npy"
expect_refusal -s -n "-m is not used" "-m with vaelight" "$SDC" decode --decoder vaelight -m x.safetensors --latent "$T256" -o "$T/r3.npy"
expect_refusal -s -n "no member named 'nope.npy'" "missing member" "$SDC" decode --decoder vaelight --latent "$T256" --member nope.npy -o "$T/r4.npy"
expect_refusal -s -n "the archive has 20 file members" "index past the end" "$SDC" decode --decoder vaelight --latent "$T256" --index 20 -o "$T/r5.npy"
expect_refusal -s -n "for a .tar" "--all on an npy" "$SDC" decode --decoder vaelight --latent "$T/x/$M0" --all "$T" 
expect_refusal -s -n "no -o with it" "--all and -o" "$SDC" decode --decoder vaelight --latent "$T256" --all "$T" -o "$T/r6.npy"
expect_refusal -s -n "not a directory" "--all not a dir" "$SDC" decode --decoder vaelight --latent "$T256" --all "$T/nodir"
expect_refusal -s -n "no output given" "no output" "$SDC" decode --decoder vaelight --latent "$T256"
expect_refusal -s -n "must end in .npy or .png" "bad extension" "$SDC" decode --decoder vaelight --latent "$T256" -o "$T/r7.jpg"
expect_refusal -s -n "cannot open" "missing decoder file" "$SDC" decode --decoder vaelight --decoder-path "$T/none.onnx" --latent "$T256" -o "$T/r8.npy"
head -c 20000 "$T256" >"$T/short.tar"
expect_refusal -s -n "short.tar" "truncated tar" "$SDC" decode --decoder vaelight --latent "$T/short.tar" --index 3 -o "$T/r9.npy"
# a NumpyObject member whose pickle calls os.system("touch PWNED")
mkdir -p "$T/evil/datasets"
{ h="{'descr': '|O', 'fortran_order': False, 'shape': (), }"; pad=$((118 - ${#h} - 1))
  printf '\223NUMPY\001\000\166\000%s%*s\n' "$h" $pad ''
  printf '\200\003cos\nsystem\nX\013\000\000\000touch PWNED\205R.'; } >"$T/evil/datasets/data_0.npy"
(cd "$T/evil" && tar -cf "$T/evil.tar" datasets/data_0.npy)
expect_refusal -s -C "$T" -n "refers to 'os.system'" "os.system pickle" "$SDC" decode --decoder vaelight --latent "$T/evil.tar" -o "$T/r10.npy"
[ ! -e "$T/PWNED" ] && pass || fail "the pickle ran os.system"
head -c 48 /dev/zero | npy_f32 "$T/rgb.npy" "1, 3, 2, 2"
expect_refusal -s -n "latent must be [B, 4, h, w]" "wrong latent shape" "$SDC" decode --decoder vaelight --latent "$T/rgb.npy" -o "$T/r11.npy"
ls "$T"/r*.npy "$T"/r*.jpg >/dev/null 2>&1 && fail "a refused decode left an output file" || pass

# ---- against ONNX Runtime ------------------------------------------------------------------------
need_node onnxruntime-node jpeg-js
node -e "console.log('  node ' + process.version + ', onnxruntime-node ' + require('onnxruntime-node/package.json').version)" 2>/dev/null

# plain [1, 4, h, w] latent from a NumpyObject member: its last bytes are the float32 payload then
# 13 bytes of pickle opcodes (BINPUT TUPLE BINPUT BUILD SETITEM APPEND TUPLE BINPUT BUILD STOP)
plain_latent() { # MEMBER_FILE H W OUT
    local n=$((4 * $2 * $3 * 4))
    tail -c $((n + 13)) "$1" | head -c $n | npy_f32 "$4" "1, 4, $2, $3"
}
versus_ort() { # LABEL SDC_NPY LATENT_NPY
    if node "$ORT/vaelight_ref.js" "$VL/VAEpreview.onnx" "$3" "$T/ref.npy" >"$T/ort.out" 2>&1; then
        if node "$ORT/compare.js" "$2" "$T/ref.npy" --max-rel 1e-4 --label "$1" >"$T/cmp.out"; then pass; else fail "$(cat "$T/cmp.out")"; fi
        sed 's/^/  /' "$T/cmp.out"
    else
        fail "$1: ONNX Runtime failed: $(cat "$T/ort.out")"
    fi
}

plain_latent "$T/x/$M0" 32 32 "$T/z0.npy"
versus_ort "256 tar data_0 vs ONNX Runtime" "$T/i0.npy" "$T/z0.npy"
ok "data_7" "$SDC" decode --decoder vaelight --latent "$T256" --member datasets/calib_data_vae_256/data_7.npy --latent-scaled -o "$T/i7.npy"
plain_latent "$T/x/datasets/calib_data_vae_256/data_7.npy" 32 32 "$T/z7.npy"
versus_ort "256 tar data_7 vs ONNX Runtime" "$T/i7.npy" "$T/z7.npy"

# non-square: rows 10..49, columns 20..43 of a 64x64 latent of the 512 tar, as a plain .npy
tar -xf "$T512" -C "$T/x" datasets/calib_data_vae/data_5.npy
plain_latent "$T/x/datasets/calib_data_vae/data_5.npy" 64 64 "$T/z5.npy"
node -e "
const { readNpy, writeNpy } = require('$ORT/npy');
const z = readNpy('$T/z5.npy'), h = 40, w = 24, out = new Float32Array(4 * h * w);
for (let c = 0; c < 4; c++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++)
    out[(c * h + i) * w + j] = z.data[(c * 64 + 10 + i) * 64 + 20 + j];
writeNpy('$T/crop.npy', [1, 4, h, w], out);
const s = out.map(v => v * 0.18215);
writeNpy('$T/crop_unscaled.npy', [1, 4, h, w], s);"
ok "crop" "$SDC" decode --decoder vaelight --latent "$T/crop.npy" --latent-scaled -o "$T/crop_img.npy"
versus_ort "40x24 crop vs ONNX Runtime" "$T/crop_img.npy" "$T/crop.npy"
ok "unscaled crop" "$SDC" decode --decoder vaelight --latent "$T/crop_unscaled.npy" -o "$T/crop_img2.npy"
node "$ORT/compare.js" "$T/crop_img2.npy" "$T/crop_img.npy" --max-rel 1e-5 --label "Z*0.18215 without --latent-scaled" >"$T/cmp.out" && pass || fail "$(cat "$T/cmp.out")"
sed 's/^/  /' "$T/cmp.out"

# round trip of a real photo: JPEG -> VAEencoder.onnx (ONNX Runtime) -> sdc's vaelight decoder
if node "$ORT/jpeg_to_npy.js" "$VL/example1.jpg" "$T/ex1.npy" >/dev/null &&
   node "$ORT/run_onnx.js" "$VL/VAEencoder.onnx" "$T/ex1.npy" -o "$T/enc" >"$T/enc.out"; then
    pass
    ok "round trip decode" "$SDC" decode --decoder vaelight --latent "$T/enc/latent.npy" --latent-scaled -o "$T/rt.npy"
    node "$ORT/compare.js" "$T/rt.npy" "$T/ex1.npy" --min-psnr 22 --label "example1.jpg round trip" >"$T/cmp.out" && pass || fail "$(cat "$T/cmp.out")"
    sed 's/^/  /' "$T/cmp.out"
else
    fail "encoding example1.jpg with ONNX Runtime failed: $(cat "$T/enc.out" 2>/dev/null)"
fi

rm -rf "$T"
finish
