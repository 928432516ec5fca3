#!/usr/bin/env bash
# tests/cli/export.sh: `sdc export` of the tiny checkpoint, run with ONNX Runtime against sdc.
#
#   bash tests/cli/export.sh SDC_EXE SHARED_DIR TMPDIR
#
# Without ONNX Runtime:
# - -W 64 -H 48 writes the three files (inline weights), --unet-timestep-input --external-data
#   writes unet.onnx + unet.onnx.data, no temporary files are left;
# - refusals (exit 1, one line on stderr, nothing written): sizes not multiples of 8, an unknown
#   part, a non-empty directory without --force, an unwritable directory.
# With node + onnxruntime-node (scripts/setup.sh; skipped with a message only when node is absent):
# - text_encoder.onnx on `sdc tokenize` ids (int32) vs `sdc encode`; unet.onnx on the time
#   embedding `sdc unet --save-temb` writes vs `sdc unet` (latent 6x8: both the 2x Resize and the
#   2->3 one); the --unet-timestep-input export (external data) vs `sdc unet`; vae_decoder.onnx vs
#   `sdc decode --latent-scaled`: max|diff| <= 1e-4 * max(1, max|ref|) each.
# With Debian's python3-onnx (/usr/bin/python3; skipped with a message when absent): every file
# passes onnx.checker.check_model(full_check=True) and is IR 8, opset 17.
. "$(dirname "$0")/lib/common.bash"
ORT=$ROOT/tests/ort
M=$TINY

# ---- exports ---------------------------------------------------------------------------------------
E1=$T/e1
E2=$T/e2
ok "export all parts" "$SDC" export -m "$M" -W 64 -H 48 -o "$E1"
sed 's/^/  /' "$T/out.txt"
[ "$(ls "$E1" | tr '\n' ' ')" = "text_encoder.onnx unet.onnx vae_decoder.onnx " ] && pass || fail "e1 holds: $(ls "$E1")"
ok "export timestep unet, external data" "$SDC" export -m "$M" -W 64 -H 48 -o "$E2" --parts unet \
    --unet-timestep-input --external-data
[ "$(ls "$E2" | tr '\n' ' ')" = "unet.onnx unet.onnx.data " ] && pass || fail "e2 holds: $(ls "$E2")"
[ "$(stat -c %s "$E2/unet.onnx")" -lt 2000000 ] && pass || fail "unet.onnx with external data is $(stat -c %s "$E2/unet.onnx") bytes"
ok "--force into a non-empty directory" "$SDC" export -m "$M" -W 64 -H 48 -o "$E2" --parts vae --force
[ -s "$E2/vae_decoder.onnx" ] && pass || fail "--force wrote no vae_decoder.onnx"

# ---- refusals -------------------------------------------------------------------------------------
expect_refusal -s -n "multiples of 8" "width not a multiple of 8" "$SDC" export -m "$M" -W 60 -H 48 -o "$T/r1"
expect_refusal -s -n "unknown part 'clip'" "unknown part" "$SDC" export -m "$M" --parts text,clip -o "$T/r2"
expect_refusal -s -n "--force" "non-empty directory" "$SDC" export -m "$M" -W 64 -H 48 -o "$E1"
mkdir -p "$T/ro"
chmod 555 "$T/ro"
if [ "$(id -u)" != 0 ]; then
    expect_refusal -s -n "$T/ro" "unwritable directory" "$SDC" export -m "$M" -W 64 -H 48 -o "$T/ro/x"
else # root writes anywhere: a path under a regular file cannot be created by anyone
    : >"$T/file"
    expect_refusal -s -n "$T/file/x" "uncreatable directory" "$SDC" export -m "$M" -W 64 -H 48 -o "$T/file/x"
fi
chmod 755 "$T/ro"
[ ! -e "$T/r1" ] && [ ! -e "$T/r2" ] && pass || fail "a refused export created its directory"
ls "$E1"/*.tmp "$E2"/*.tmp >/dev/null 2>&1 && fail "temporary files left" || pass

# ---- onnx.checker ---------------------------------------------------------------------------------
if /usr/bin/python3 -c "import onnx" 2>/dev/null; then
    for f in "$E1/text_encoder.onnx" "$E1/unet.onnx" "$E1/vae_decoder.onnx" "$E2/unet.onnx"; do
        if /usr/bin/python3 -c "
import sys, onnx
onnx.checker.check_model(sys.argv[1], full_check=True)
m = onnx.load(sys.argv[1], load_external_data=False)
assert m.ir_version == 8 and [(o.domain, o.version) for o in m.opset_import] == [('', 17)], (m.ir_version, m.opset_import)
print('  onnx.checker full_check: %s ok (%d nodes)' % (sys.argv[1].split('/')[-1], len(m.graph.node)))" "$f" >"$T/chk.out" 2>&1
        then pass; cat "$T/chk.out"; else fail "onnx.checker $f: $(tail -3 "$T/chk.out")"; fi
    done
else
    echo "export: Debian's python3-onnx is not installed: onnx.checker is skipped (scripts/setup.sh installs it)"
fi

# ---- against ONNX Runtime ---------------------------------------------------------------------------
need_node onnxruntime-node
PROMPT="a photo of a cat"
"$SDC" tokenize "$PROMPT" >"$T/ids.json" && pass || fail "tokenize"
(cd "$ROOT" && node -e "
const { writeNpy } = require('./tests/ort/npy');
let s = 12345; const r = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648 * 2 - 1; };
writeNpy('$T/x.npy', [1, 4, 6, 8], Float32Array.from({length: 192}, r));
writeNpy('$T/z.npy', [1, 4, 6, 8], Float32Array.from({length: 192}, () => 3 * r()));
writeNpy('$T/t.npy', [1], Float32Array.from([500]));
writeNpy('$T/ids.npy', [1, 77], Float32Array.from(JSON.parse(require('fs').readFileSync('$T/ids.json'))));") && pass || fail "writing the inputs"
ok "sdc encode" "$SDC" encode -m "$M" -p "$PROMPT" -o "$T/ctx.npy"
ok "sdc unet --save-temb" "$SDC" unet -m "$M" --latent "$T/x.npy" --timestep 500 --context "$T/ctx.npy" \
    -o "$T/eps.npy" --save-temb "$T/temb.npy"
ok "sdc decode" "$SDC" decode -m "$M" --latent "$T/z.npy" --latent-scaled -o "$T/img.npy"
versus_ort() { # LABEL MODEL REF NAME=IN...
    local label=$1
    shift
    if node "$ORT/run_export.js" "$@" --label "$label" >"$T/cmp.out" 2>&1; then pass; else fail "$(cat "$T/cmp.out")"; fi
    sed 's/^/  /' "$T/cmp.out"
}
versus_ort "text_encoder.onnx vs sdc encode" "$E1/text_encoder.onnx" "$T/ctx.npy" "input_ids=$T/ids.npy"
versus_ort "unet.onnx (time embedding) vs sdc unet" "$E1/unet.onnx" "$T/eps.npy" "sample=$T/x.npy" \
    "encoder_hidden_states=$T/ctx.npy" "/down_blocks.0/resnets.0/act_1/Mul_output_0=$T/temb.npy"
versus_ort "unet.onnx (timestep, external data) vs sdc unet" "$E2/unet.onnx" "$T/eps.npy" "sample=$T/x.npy" \
    "encoder_hidden_states=$T/ctx.npy" "timestep=$T/t.npy"
versus_ort "vae_decoder.onnx vs sdc decode" "$E1/vae_decoder.onnx" "$T/img.npy" "latent=$T/z.npy"

rm -rf "$T"
finish
