#!/usr/bin/env bash
# tests/cli/full_export.sh: `sdc export` at the deployment size from a full-size checkpoint.
# Writes a full SD1.5 random-weight f16 checkpoint (2.1 GB, into TMPDIR, deleted afterwards),
# exports it at -W 320 -H 480 and checks: the UNet (3.4 GB in float32) goes to external data
# (unet.onnx small, unet.onnx.data > 3.4e9 bytes), the text encoder and VAE decoder stay inline;
# the contract's input shapes; onnx.checker full_check on all three (Debian's python3-onnx, skipped
# with a message when absent); the full text encoder under ONNX Runtime matches `sdc encode`
# within 1e-4 * max(1, max|ref|) (skipped with a message when node is absent).
# Labelled "slow" (the name starts with "full"): run by the Release pass of scripts/test.sh only.
. "$(dirname "$0")/lib/common.bash"
trap 'rm -rf "$T"' EXIT
M=$T/full-f16.safetensors
D=$T/out
if "$SDC" mkmodel --full --dtype f16 --seed 7 -o "$M" >"$T/mk.txt" 2>&1; then pass; else fail "mkmodel --full"; cat "$T/mk.txt" >&2; fi
if "$SDC" export -m "$M" -W 320 -H 480 -o "$D" >"$T/ex.txt" 2>&1; then pass; else fail "export"; cat "$T/ex.txt" >&2; fi
cat "$T/ex.txt"
[ "$(ls "$D" | tr '\n' ' ')" = "text_encoder.onnx unet.onnx unet.onnx.data vae_decoder.onnx " ] && pass || fail "out holds: $(ls "$D")"
[ "$(stat -c %s "$D/unet.onnx" 2>/dev/null || echo 0)" -lt 2000000 ] && pass || fail "unet.onnx is not small"
[ "$(stat -c %s "$D/unet.onnx.data" 2>/dev/null || echo 0)" -gt 3400000000 ] && pass || fail "unet.onnx.data is under 3.4e9 bytes"

if /usr/bin/python3 -c "import onnx" 2>/dev/null; then
    if /usr/bin/python3 -c "
import sys, onnx
want = {'text_encoder.onnx': [('input_ids', 6, [1, 77])],
        'unet.onnx': [('sample', 1, [1, 4, 60, 40]), ('encoder_hidden_states', 1, [1, 77, 768]),
                      ('/down_blocks.0/resnets.0/act_1/Mul_output_0', 1, [1, 1280])],
        'vae_decoder.onnx': [('latent', 1, [1, 4, 60, 40])]}
outs = {'text_encoder.onnx': [1, 77, 768], 'unet.onnx': [1, 4, 60, 40], 'vae_decoder.onnx': [1, 3, 480, 320]}
for f in want:
    p = sys.argv[1] + '/' + f
    onnx.checker.check_model(p, full_check=True)
    m = onnx.load(p, load_external_data=False)
    got = [(i.name, i.type.tensor_type.elem_type, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in m.graph.input]
    assert got == want[f], (f, got)
    assert [d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim] == outs[f], f
    ext = sum(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
    assert (ext > 0) == (f == 'unet.onnx'), (f, ext)
    print('  %s: checker ok, %d nodes, %d initializers (%d external)' % (f, len(m.graph.node), len(m.graph.initializer), ext))
" "$D" >"$T/chk.txt" 2>&1; then pass; cat "$T/chk.txt"; else fail "onnx checks: $(tail -3 "$T/chk.txt")"; fi
else
    echo "full_export: Debian's python3-onnx is not installed: onnx.checker is skipped (scripts/setup.sh installs it)"
fi

if command -v node >/dev/null 2>&1; then
    "$SDC" tokenize "a photo of a cat" >"$T/ids.json" &&
        (cd "$ROOT" && node -e "require('./tests/ort/npy').writeNpy('$T/ids.npy', [1, 77],
            Float32Array.from(JSON.parse(require('fs').readFileSync('$T/ids.json'))))") && pass || fail "ids"
    if "$SDC" encode -m "$M" -p "a photo of a cat" -o "$T/ctx.npy" >/dev/null 2>"$T/enc.err"; then pass; else fail "encode: $(cat "$T/enc.err")"; fi
    if node "$ROOT/tests/ort/run_export.js" "$D/text_encoder.onnx" "$T/ctx.npy" "input_ids=$T/ids.npy" \
            --label "full text_encoder.onnx vs sdc encode" >"$T/cmp.txt" 2>&1; then pass; else fail "$(cat "$T/cmp.txt")"; fi
    sed 's/^/  /' "$T/cmp.txt"
else
    echo "full_export: node not found: the ONNX Runtime comparison is skipped"
fi
finish
