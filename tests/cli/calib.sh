#!/usr/bin/env bash
# tests/cli/calib.sh: `sdc calib` and `sdc deploy` on the tiny checkpoint.
#
#   bash tests/cli/calib.sh SDC_EXE SHARED_DIR TMPDIR
#
# - calib over a prompts file (a comment, a blank line, a TAB-separated negative), 64x48, 3 steps:
#   exactly the documented files; tar listings (the `tar` command): 12 UNet members (2 prompts x 3
#   steps x cond/uncond), 4 text rows, 2 VAE latents, the Numpy tars listing the same names as the
#   NumpyObject one; `sdc decode` reads a NumpyObject VAE member and gives the same image, bit for
#   bit, as the Numpy member and as txt2img's --save-latent for the same seed;
# - --max-samples 5: 5 UNet members, 4 text, 2 VAE, and the configs' calibration_size says so;
# - --force replaces calib's own files and keeps other files;
# - sdc deploy: the three ONNX files beside the kit; with node + onnxruntime-node, unet.onnx run by
#   ONNX Runtime on a recorded sample (its sample, context and time embedding, from the Numpy tars)
#   matches `sdc unet` on the same sample, context and the manifest's timestep (<= 1e-4 rel), and
#   `sdc export --check` passes on the kit (and fails, exit 1, at the wrong -H); an --fp16 export
#   passes --check within 2e-2, and (python3-onnx) has float16 initializers and I/O (int32 ids), no
#   Cast node, and passes onnx.checker; --fp16 with --unet-timestep-input is refused;
# - with numpy (/usr/bin/python3; skipped with a message when absent): every NumpyObject member
#   loads with np.load(allow_pickle=True) as a dict of float32 (int64 for input_ids) arrays equal to
#   the Numpy members;
# - refusals (exit 1, one line on stderr, nothing left): size not a multiple of 8, a non-empty
#   directory without --force, an uncreatable directory, a missing or empty prompts file, an
#   unknown sampler (fails inside the run: no staging folder left), --fp16 on calib; a full disk
#   (a 64 KiB tmpfs, when mount works): calib and export fail with one line, leaving no file.
. "$(dirname "$0")/lib/common.bash"
M=$TINY

P=$T/prompts.txt
printf '# calibration prompts\na photo of a cat\n\n(a red car:1.2), highway\tblurry, low quality\n' >"$P"
C1=$T/c1
ok "calib" "$SDC" calib -m "$M" --prompts "$P" -W 64 -H 48 --steps 3 --seed 5 -o "$C1"
sed 's/^/  /' "$T/out.txt"
same "calib files" "$(cd "$C1" && find . -type f | sort | tr '\n' ' ')" \
    "./calib/text_encoder/input_ids.tar ./calib/text_encoder_numpyobject.tar ./calib/unet/encoder_hidden_states.tar ./calib/unet/sample.tar ./calib/unet/time_embedding.tar ./calib/unet_numpyobject.tar ./calib/vae_decoder/latent.tar ./calib/vae_decoder_numpyobject.tar ./manifest.json ./pulsar2/build.sh ./pulsar2/text_encoder.json ./pulsar2/text_encoder_numpy.json ./pulsar2/unet.json ./pulsar2/unet_numpy.json ./pulsar2/vae_decoder.json ./pulsar2/vae_decoder_numpy.json ./time_embedding.npy "
same "unet members" "$(tar tf "$C1/calib/unet_numpyobject.tar" | wc -l)" 12
same "first/last unet members" "$(tar tf "$C1/calib/unet_numpyobject.tar" | sed -n '1p;$p' | tr '\n' ' ')" \
    "p000_s000_cond.npy p001_s002_uncond.npy "
for f in sample encoder_hidden_states time_embedding; do
    same "unet/$f.tar pairs by name" "$(tar tf "$C1/calib/unet/$f.tar" | md5sum)" "$(tar tf "$C1/calib/unet_numpyobject.tar" | md5sum)"
done
same "text members" "$(tar tf "$C1/calib/text_encoder_numpyobject.tar" | tr '\n' ' ')" \
    "p000_cond_00.npy p000_uncond_00.npy p001_cond_00.npy p001_uncond_00.npy "
same "text Numpy members" "$(tar tf "$C1/calib/text_encoder/input_ids.tar" | md5sum)" "$(tar tf "$C1/calib/text_encoder_numpyobject.tar" | md5sum)"
same "vae members" "$(tar tf "$C1/calib/vae_decoder_numpyobject.tar" | tr '\n' ' ')" "p000.npy p001.npy "
grep -q '"calibration_size": 12' "$C1/pulsar2/unet.json" && pass || fail "unet.json calibration_size"
grep -q '"data_type": "U16"' "$C1/pulsar2/vae_decoder.json" && grep -q '"npu_mode": "NPU3"' "$C1/pulsar2/unet_numpy.json" &&
    pass || fail "U16 / NPU3 in the configs"
grep -q 'pulsar2 build --input unet.onnx --config pulsar2/unet$sfx.json' "$C1/pulsar2/build.sh" && pass || fail "build.sh"

# the VAE set through sdc decode: NumpyObject member = Numpy member = txt2img's final latent (seed 5 + 1)
ok "decode NumpyObject member" "$SDC" decode -m "$M" --latent "$C1/calib/vae_decoder_numpyobject.tar" --member p001.npy \
    --latent-scaled -o "$T/v_obj.npy"
ok "decode Numpy member" "$SDC" decode -m "$M" --latent "$C1/calib/vae_decoder/latent.tar" --member p001.npy \
    --latent-scaled -o "$T/v_np.npy"
ok "txt2img prompt 2" "$SDC" txt2img -m "$M" -p "(a red car:1.2), highway" -n "blurry, low quality" -W 64 -H 48 \
    --steps 3 --seed 6 -o "$T/p2.png" --save-latent "$T/z2.npy"
ok "decode txt2img latent" "$SDC" decode -m "$M" --latent "$T/z2.npy" -o "$T/v_ref.npy"
cmp -s "$T/v_obj.npy" "$T/v_np.npy" && pass || fail "NumpyObject and Numpy VAE members decode differently"
cmp -s "$T/v_obj.npy" "$T/v_ref.npy" && pass || fail "the recorded VAE latent is not txt2img's final latent / 0.18215"

# --max-samples
ok "calib --max-samples 5" "$SDC" calib -m "$M" --prompts "$P" -W 64 -H 48 --steps 3 --max-samples 5 -o "$T/c2"
same "max 5 unet" "$(tar tf "$T/c2/calib/unet/sample.tar" | wc -l)" 5
same "max 5 text" "$(tar tf "$T/c2/calib/text_encoder/input_ids.tar" | wc -l)" 4
same "max 5 vae" "$(tar tf "$T/c2/calib/vae_decoder/latent.tar" | wc -l)" 2
# prompt 0 gets 2 picks, prompt 1 gets 3; steps spread with a per-prompt phase, rows alternating
same "max 5 picks" "$(tar tf "$T/c2/calib/unet/sample.tar" | tr '\n' ' ')" \
    "p000_s000_cond.npy p000_s001_uncond.npy p001_s000_uncond.npy p001_s001_cond.npy p001_s002_uncond.npy "
grep -q '"calibration_size": 5' "$T/c2/pulsar2/unet.json" && pass || fail "max 5 calibration_size"

# --force: calib's own files replaced, others kept
: >"$T/c2/keep.txt"
ok "calib --force" "$SDC" calib -m "$M" --prompts "$P" -W 64 -H 48 --steps 3 -o "$T/c2" --force
same "after --force" "$(tar tf "$T/c2/calib/unet/sample.tar" | wc -l) $(ls "$T/c2/keep.txt" 2>/dev/null | wc -l)" "12 1"

# --embeddings and --lora reach the recorded conditioning (the same prompts file otherwise)
mkdir -p "$T/emb"
printf 'a photo of mystyle cat\n' >"$T/pe.txt"
ok "mkmodel embedding" "$SDC" mkmodel --embedding "$T/emb/mystyle.pt" --vectors 2 --width 64 --seed 3
ok "mkmodel lora" "$SDC" mkmodel --lora "$T/l.safetensors" -m "$M" --rank 2 --seed 3
ok "calib plain" "$SDC" calib -m "$M" --prompts "$T/pe.txt" -W 64 -H 48 --steps 2 -o "$T/e0"
ok "calib --embeddings" "$SDC" calib -m "$M" --prompts "$T/pe.txt" -W 64 -H 48 --steps 2 --embeddings "$T/emb" -o "$T/e1"
ok "calib --lora" "$SDC" calib -m "$M" --prompts "$T/pe.txt" -W 64 -H 48 --steps 2 --lora "$T/l.safetensors:0.8" -o "$T/e2"
h0=$(md5sum <"$T/e0/calib/unet/encoder_hidden_states.tar")
h1=$(md5sum <"$T/e1/calib/unet/encoder_hidden_states.tar")
h2=$(md5sum <"$T/e2/calib/unet/encoder_hidden_states.tar")
[ "$h0" != "$h1" ] && pass || fail "--embeddings did not change the recorded context"
[ "$h0" != "$h2" ] && pass || fail "--lora did not change the recorded context"
printf 'a <lora:film:1> cat\n' >"$T/pl.txt"
expect_refusal -n "merge the LoRA with --lora" "calib with a <lora:> tag" "$SDC" calib -m "$M" --prompts "$T/pl.txt" -W 64 -H 48 --steps 2 -o "$T/e3"

# ---- refusals ---------------------------------------------------------------------------------------
expect_refusal -n "multiples of 8" "width not a multiple of 8" "$SDC" calib -m "$M" --prompts "$P" -W 60 -H 48 -o "$T/r1"
expect_refusal -n "--force" "non-empty directory" "$SDC" calib -m "$M" --prompts "$P" -W 64 -H 48 -o "$C1"
: >"$T/file"
expect_refusal -n "$T/file/x" "uncreatable directory" "$SDC" calib -m "$M" --prompts "$P" -W 64 -H 48 -o "$T/file/x"
expect_refusal -n "cannot open the prompts file" "missing prompts file" "$SDC" calib -m "$M" --prompts "$T/nope.txt" -o "$T/r2"
printf '# nothing\n\n' >"$T/empty.txt"
expect_refusal -n "no prompts" "no prompts" "$SDC" calib -m "$M" --prompts "$T/empty.txt" -o "$T/r3"
expect_refusal -n "export option" "--fp16 on calib" "$SDC" calib -m "$M" --prompts "$P" --fp16 -o "$T/r4"
expect_refusal -n "unknown sampler 'heun'" "unknown sampler" "$SDC" calib -m "$M" --prompts "$P" -W 64 -H 48 --steps 2 \
    --sampler heun -o "$T/r5"
same "nothing left by the failed run" "$(ls -A "$T/r5" 2>/dev/null | wc -l)" 0
[ ! -e "$T/r1" ] && [ ! -e "$T/r2" ] && [ ! -e "$T/r3" ] && [ ! -e "$T/r4" ] && pass || fail "a refused calib created its directory"

# a full disk: a 64 KiB tmpfs (needs root and mount; skipped with a message otherwise)
FULL=$T/full
mkdir -p "$FULL"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=64k tmpfs "$FULL" 2>/dev/null; then
    expect_refusal -n "disk full" "calib on a full disk" "$SDC" calib -m "$M" --prompts "$P" -W 64 -H 48 --steps 3 -o "$FULL/c"
    same "full disk: files left by calib" "$(find "$FULL" -type f | wc -l)" 0
    expect_refusal -n "disk full" "export on a full disk" "$SDC" export -m "$M" -W 64 -H 48 -o "$FULL/e"
    same "full disk: files left by export" "$(find "$FULL" -type f | wc -l)" 0
    umount "$FULL"
else
    echo "calib: cannot mount a small tmpfs (not root?): the full-disk checks are skipped"
fi

expect_refusal -n "--unet-timestep-input" "--fp16 with a timestep input" "$SDC" export -m "$M" -W 64 -H 48 -o "$T/r6" \
    --fp16 --unet-timestep-input
if /usr/bin/python3 -c "import onnx" 2>/dev/null; then # the float16 graphs: types, no Cast at all
    ok "export --fp16 (checker)" "$SDC" export -m "$M" -W 64 -H 48 -o "$T/f16c" --fp16
    if /usr/bin/python3 - "$T/f16c" >"$T/f16.out" 2>&1 <<'EOF'
import sys, onnx
F16, I32, I64 = onnx.TensorProto.FLOAT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64
for f in ['text_encoder', 'unet', 'vae_decoder']:
    m = onnx.load(f'{sys.argv[1]}/{f}.onnx')
    onnx.checker.check_model(m, full_check=True)
    assert not [n for n in m.graph.node if n.op_type == 'Cast'], f
    assert {t.data_type for t in m.graph.initializer} <= {F16, I64}, f
    assert [i.type.tensor_type.elem_type for i in m.graph.input] == ([I32] if f == 'text_encoder' else [F16] * len(m.graph.input)), f
    assert m.graph.output[0].type.tensor_type.elem_type == F16, f
    print(f'  fp16 {f}.onnx: checker ok, no Cast, float16 initializers and I/O')
EOF
    then pass; cat "$T/f16.out"; else fail "fp16 graphs: $(tail -3 "$T/f16.out")"; fi
fi

# ---- numpy reads every NumpyObject member -------------------------------------------------------------
if /usr/bin/python3 -c "import numpy" 2>/dev/null; then
    if /usr/bin/python3 - "$C1/calib" >"$T/np.out" 2>&1 <<'EOF'
import io, sys, tarfile, numpy as np
d = sys.argv[1]
def load(path):
    t = tarfile.open(path)
    return {m.name: np.load(io.BytesIO(t.extractfile(m).read()), allow_pickle=True) for m in t.getmembers()}
sets = {'unet': ['sample', 'encoder_hidden_states', '/down_blocks.0/resnets.0/act_1/Mul_output_0'],
        'text_encoder': ['input_ids'], 'vae_decoder': ['latent']}
files = {'/down_blocks.0/resnets.0/act_1/Mul_output_0': 'time_embedding'}
for model, names in sets.items():
    obj = load(f'{d}/{model}_numpyobject.tar')
    plain = {n: load(f'{d}/{model}/{files.get(n, n)}.tar') for n in names}
    for member, arr in obj.items():
        assert arr.dtype == object and arr.shape == (), (member, arr.dtype, arr.shape)
        dct = arr.item()
        assert list(dct) == names, (member, list(dct))
        for n in names:
            want = np.int64 if n == 'input_ids' else np.float32
            assert dct[n].dtype == want and np.array_equal(dct[n], plain[n][member]), (member, n)
    print(f'  numpy: {model}: {len(obj)} NumpyObject members load and equal the Numpy members')
EOF
    then pass; cat "$T/np.out"; else fail "numpy: $(tail -3 "$T/np.out")"; fi
else
    echo "calib: numpy is not installed for /usr/bin/python3: the np.load check is skipped"
fi

# ---- sdc deploy, and the recorded set through ONNX Runtime ----------------------------------------------
D=$T/d
ok "deploy" "$SDC" deploy -m "$M" --prompts "$P" -W 64 -H 48 --steps 3 --seed 5 -o "$D"
sed 's/^/  /' "$T/out.txt"
same "deploy onnx files" "$(ls "$D"/*.onnx | xargs -n1 basename | tr '\n' ' ')" "text_encoder.onnx unet.onnx vae_decoder.onnx "
[ -s "$D/manifest.json" ] && [ -s "$D/calib/unet_numpyobject.tar" ] && pass || fail "deploy wrote no kit"
if command -v node >/dev/null 2>&1 && (cd "$ROOT" && node -e "require('onnxruntime-node')" 2>/dev/null); then
    for f in sample encoder_hidden_states time_embedding; do
        tar xOf "$D/calib/unet/$f.tar" p001_s001_cond.npy >"$T/rec_$f.npy" || fail "extract $f"
    done
    TS=$(sed -n 's/.*"timesteps": \[\([^]]*\)\].*/\1/p' "$D/manifest.json" | cut -d, -f2 | tr -d ' ')
    ok "sdc unet on the recorded sample" "$SDC" unet -m "$M" --latent "$T/rec_sample.npy" --timestep "$TS" \
        --context "$T/rec_encoder_hidden_states.npy" -o "$T/rec_eps.npy"
    if node "$ROOT/tests/ort/run_export.js" "$D/unet.onnx" "$T/rec_eps.npy" "sample=$T/rec_sample.npy" \
        "encoder_hidden_states=$T/rec_encoder_hidden_states.npy" \
        "/down_blocks.0/resnets.0/act_1/Mul_output_0=$T/rec_time_embedding.npy" \
        --label "unet.onnx on recorded p001_s001_cond (t=$TS) vs sdc unet" >"$T/cmp.out" 2>&1; then pass; else fail "$(cat "$T/cmp.out")"; fi
    sed 's/^/  /' "$T/cmp.out"
    # sdc export --check on the kit: all three models within 1e-4, onnx.checker when installed
    ok "export --check" "$SDC" export -m "$M" -W 64 -H 48 -o "$D" --check
    sed 's/^/  /' "$T/out.txt"
    same "--check lines" "$(grep -c 'rel .* (tol 0.0001)$' "$T/out.txt")" 3
    "$SDC" export -m "$M" -W 64 -H 56 -o "$D" --check --parts vae >"$T/bad.out" 2>&1
    same "--check at the wrong size fails" "$? $(grep -c 'could not run it' "$T/bad.out")" "1 1"
    # --fp16: float16 graphs run by ONNX Runtime within 2e-2 of sdc's float32
    ok "export --fp16" "$SDC" export -m "$M" -W 64 -H 48 -o "$T/f16" --fp16
    ok "export --check (fp16)" "$SDC" export -m "$M" -W 64 -H 48 -o "$T/f16" --check
    sed 's/^/  fp16: /' "$T/out.txt"
    same "fp16 --check lines" "$(grep -c 'rel .* (tol 0.02)$' "$T/out.txt")" 3
else
    echo "calib: node or onnxruntime-node missing: the ONNX Runtime check of the recorded set is skipped"
fi

rm -rf "$T"
finish
