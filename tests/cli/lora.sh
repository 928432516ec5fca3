#!/usr/bin/env bash
# tests/cli/lora.sh: LoRA from the command line, on the tiny model, with LoRAs made by mkmodel.
#
#   bash tests/cli/lora.sh SDC_EXE SHARED_DIR TMPDIR
#
# - sdc mkmodel --lora writes kohya and PEFT (LoCon) LoRAs that apply to every tensor;
# - txt2img: a <lora:NAME:W> tag changes the picture; it gives exactly the latent of --lora FILE:W
#   with the tag-free prompt; <lora:NAME:0> gives the latent of no LoRA at all;
# - the infotext keeps the prompt as typed and adds Lora hashes: "NAME: <12 hex>" with the
#   SHA-256 of the file after its header (webui's addnet hash), several in prompt order;
# - stderr names how many tensors each LoRA applied;
# - refusals (exit 1, one line, no picture): an unknown name, no --lora-dir, a LoRA whose shapes
#   belong to another model;
# - sdc export --lora writes the merged weights.
. "$(dirname "$0")/lib/common.bash"
mkdir -p "$T/loras"
M=$TINY
addnet_hash() { # the SHA-256 of a safetensors file after its 8 + N header bytes, 12 hex digits
    local n
    n=$(od -An -t u8 -N8 "$1" | tr -d ' ')
    tail -c +$((n + 9)) "$1" | sha256sum | cut -c1-12
}
gen() { # gen OUT.png PROMPT [ARGS...]: a 64x64, 3-step picture with its latent in OUT.png.npy
    local out=$1 prompt=$2; shift 2
    ok "txt2img $prompt $*" "$SDC" txt2img -m "$M" -p "$prompt" -W 64 -H 64 --steps 3 --seed 7 -t 2 \
        --save-latent "$out.npy" -o "$out" "$@"
}

# ---- random LoRAs ------------------------------------------------------------------------------
ok "mkmodel --lora kohya" "$SDC" mkmodel --lora "$T/loras/film.safetensors" -m "$M" --rank 4 --seed 1
ok "mkmodel --lora peft locon" "$SDC" mkmodel --lora "$T/loras/peft.safetensors" --tiny --format peft --locon --dtype f16
ok "mkmodel --lora full" "$SDC" mkmodel --lora "$T/full.safetensors" --full --rank 1

# ---- txt2img -----------------------------------------------------------------------------------
gen "$T/none.png" "a photo of a cat"
gen "$T/tag.png" "a photo of a cat <lora:film:0.8>" --lora-dir "$T/loras"
cp "$T/err.txt" "$T/tag_err.txt"
gen "$T/cmdline.png" "a photo of a cat" --lora "$T/loras/film.safetensors:0.8"
gen "$T/zero.png" "a photo of a cat <lora:film:0>" --lora-dir "$T/loras"
cmp -s "$T/none.png.npy" "$T/tag.png.npy" && fail "the LoRA tag does not change the latent" || pass
cmp -s "$T/tag.png.npy" "$T/cmdline.png.npy" && pass || fail "<lora:film:0.8> and --lora film:0.8 differ"
cmp -s "$T/none.png.npy" "$T/zero.png.npy" && pass || fail "<lora:film:0> differs from no LoRA"
grep -q "lora film: applied 612/612 tensors to 204 weights" "$T/tag_err.txt" && pass \
    || { fail "no report of the applied tensors"; cat "$T/tag_err.txt" >&2; }

h=$(addnet_hash "$T/loras/film.safetensors")
hp=$(addnet_hash "$T/loras/peft.safetensors")
want="parameters"$'\x00'"a photo of a cat <lora:film:0.8>"$'\n'"Steps: 3, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 7, Size: 64x64, Model hash: 91767171ba, Model: sd15-tiny-f32, Lora hashes: \"film: $h\", Version: sdc 0.1"
grep -aqF "$want" "$T/tag.png" && pass || { fail "infotext: expected '$want'"; strings "$T/tag.png" | grep -a Steps >&2; }

gen "$T/two.png" "<lora:peft:0.5:1> a photo, <lora:film:-0.3> cat" --lora-dir "$T/loras"
grep -aqF "<lora:peft:0.5:1> a photo, <lora:film:-0.3> cat" "$T/two.png" && pass || fail "prompt not kept as typed"
grep -aqF "Lora hashes: \"peft: $hp, film: $h\"" "$T/two.png" && pass \
    || { fail "two LoRAs: Lora hashes"; strings "$T/two.png" | grep -a Steps >&2; }
grep -q "lora peft: applied 536/536 tensors" "$T/err.txt" && pass || { fail "peft report"; cat "$T/err.txt" >&2; }

# ---- refusals ----------------------------------------------------------------------------------
expect_refusal -f "$T/x.png" -n "no LoRA named 'nosuch'" "unknown LoRA name" \
    "$SDC" txt2img -m "$M" -p "a <lora:nosuch:1>" --lora-dir "$T/loras" -W 64 -H 64 --steps 1 -o "$T/x.png"
expect_refusal -f "$T/x.png" -n "no LoRA directory" "no --lora-dir" \
    "$SDC" txt2img -m "$M" -p "a <lora:film:1>" -W 64 -H 64 --steps 1 -o "$T/x.png"
expect_refusal -f "$T/x.png" -n "does not fit the model" "a LoRA of another model" \
    "$SDC" txt2img -m "$M" -p "a cat" --lora "$T/full.safetensors" -W 64 -H 64 --steps 1 -o "$T/x.png"
expect_refusal -f "$T/x.png" -n "weight 'abc'" "bad --lora weight" \
    "$SDC" txt2img -m "$M" -p "a cat" --lora "$T/loras/film.safetensors:abc" -W 64 -H 64 --steps 1 -o "$T/x.png"
expect_refusal -f "$T/x.png" -n "not a finite number" "bad tag weight" \
    "$SDC" txt2img -m "$M" -p "a <lora:film:x>" --lora-dir "$T/loras" -W 64 -H 64 --steps 1 -o "$T/x.png"

# ---- export carries the merged weights ---------------------------------------------------------
ok "export" "$SDC" export -m "$M" -W 64 -H 64 --parts text -o "$T/plain"
ok "export --lora" "$SDC" export -m "$M" -W 64 -H 64 --parts text --lora "$T/loras/film.safetensors" -o "$T/merged"
cmp -s "$T/plain/text_encoder.onnx" "$T/merged/text_encoder.onnx" && fail "export ignores --lora" || pass

finish
