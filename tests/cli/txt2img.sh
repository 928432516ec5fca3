#!/usr/bin/env bash
# tests/cli/txt2img.sh: txt2img and the stage commands from the command line, on the tiny model.
#
#   bash tests/cli/txt2img.sh SDC_EXE SHARED_DIR TMPDIR
#
# - txt2img writes an RGB PNG whose "parameters" text chunk is exactly A1111's infotext;
# - the same seed gives the same bytes with 1 and 2 threads; another seed does not;
# - --save-latent, --init-latent, --cond/--uncond, --scheduler-compat diffusers;
# - stage commands chain: encode -> unet -> decode (.npy and .png);
# - argument errors: exit 1, one line on stderr, no output file written.
set -u
SDC=$1
SHARED=$2
T=$3
rm -rf "$T"
mkdir -p "$T"
M=$SHARED/testdata/tiny/sd15-tiny-f32.safetensors
passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
ok() { # ok DESCRIPTION CMD...: the command must succeed
    local d=$1; shift
    if "$@" >"$T/out.txt" 2>"$T/err.txt"; then pass; else fail "$d: exit $?"; cat "$T/err.txt" >&2; fi
}
refused() { # refused DESCRIPTION OUTFILE CMD...: exit 1, one stderr line, no output file
    local d=$1 out=$2; shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt"
    local rc=$?
    local lines
    lines=$(wc -l <"$T/err.txt")
    if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && [ ! -e "$out" ]; then pass
    else fail "$d: exit $rc, $lines stderr lines, output exists: $([ -e "$out" ] && echo yes || echo no)"; cat "$T/err.txt" >&2; fi
}

# ---- txt2img and its PNG metadata ------------------------------------------------------------
ok "txt2img" "$SDC" txt2img -m "$M" -p "a photo of a cat" -n "blurry" -W 64 -H 64 --steps 4 --seed 42 -t 1 -o "$T/a.png"
cp "$T/out.txt" "$T/table.txt"
[ -s "$T/a.png" ] && pass || fail "no PNG written"
head -c 8 "$T/a.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" && pass || fail "not a PNG signature"
grep -q "text encoder" "$T/table.txt" && grep -q "UNet per step" "$T/table.txt" && grep -q "VAE decoder" "$T/table.txt" \
    && pass || { fail "timing table incomplete"; cat "$T/table.txt" >&2; }
expected=$'parameters\x00a photo of a cat\nNegative prompt: blurry\nSteps: 4, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 64x64, Model hash: 91767171ba, Model: sd15-tiny-f32, Version: sdc 0.1'
if grep -aqF "Steps: 4, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 64x64, Model hash: 91767171ba, Model: sd15-tiny-f32, Version: sdc 0.1" "$T/a.png" \
   && LC_ALL=C grep -aq "parameters" "$T/a.png"; then pass; else fail "parameters chunk: expected '$expected'"; strings "$T/a.png" | head -5 >&2; fi

# determinism across thread counts, and the seed matters
ok "txt2img 2 threads" "$SDC" txt2img -m "$M" -p "a photo of a cat" -n "blurry" -W 64 -H 64 --steps 4 --seed 42 -t 2 -o "$T/b.png"
cmp -s "$T/a.png" "$T/b.png" && pass || fail "1 and 2 threads give different pictures"
ok "txt2img seed 43" "$SDC" txt2img -m "$M" -p "a photo of a cat" -n "blurry" -W 64 -H 64 --steps 4 --seed 43 -o "$T/c.png"
cmp -s "$T/a.png" "$T/c.png" && fail "seeds 42 and 43 give the same picture" || pass

# other samplers, schedules, rngs, orientation, the article's diffusers variant
for args in "--sampler euler" "--sampler euler_a --rng cpu" "--sampler ddim" "--schedule exponential" \
            "--scheduler-compat diffusers --schedule karras --final-sigmas sigma_min" "--clip-skip 2"; do
    # shellcheck disable=SC2086
    ok "txt2img $args" "$SDC" txt2img -m "$M" -p "x" -W 40 -H 56 --steps 3 $args -o "$T/s.png"
done

# --save-latent, then the same picture from decode of that latent
ok "txt2img --save-latent" "$SDC" txt2img -m "$M" -p "a dog" -W 48 -H 32 --steps 3 --save-latent "$T/z.npy" -o "$T/d.png"
[ -s "$T/z.npy" ] && pass || fail "--save-latent wrote nothing"
ok "decode png" "$SDC" decode -m "$M" --latent "$T/z.npy" -o "$T/d2.png"
ok "decode npy" "$SDC" decode -m "$M" --latent "$T/z.npy" -o "$T/img.npy"
cmp -s "$T/d.png" "$T/d2.png" && fail "decode PNG has no metadata, txt2img's does: they should differ" || pass

# stage chain: encode -> unet
ok "encode" "$SDC" encode -m "$M" -p "a photo of a cat" -o "$T/c.npy"
ok "encode clip skip 2" "$SDC" encode -m "$M" -p "a photo of a cat" --clip-skip 2 -o "$T/c2.npy"
ok "tokenize" "$SDC" tokenize "a photo of a cat"
grep -q '^\[49406, 320, 1125, 539, 320, 2368, 49407' "$T/out.txt" && pass || { fail "tokenize ids"; cat "$T/out.txt" >&2; }
ok "unet" "$SDC" unet -m "$M" --latent "$T/z.npy" --timestep 500.5 --context "$T/c.npy" -o "$T/eps.npy"
[ -s "$T/eps.npy" ] && pass || fail "unet wrote nothing"
ok "txt2img --cond/--uncond" "$SDC" txt2img -m "$M" --cond "$T/c.npy" --uncond "$T/c2.npy" -W 48 -H 32 --steps 2 -o "$T/e.png"
ok "txt2img --init-latent" "$SDC" txt2img -m "$M" -p "a" --init-latent "$T/z.npy" -W 48 -H 32 --steps 2 -o "$T/f.png"

# live previews with the vaelight decoder, and vaelight for the final picture
ok "txt2img --preview DIR" "$SDC" txt2img -m "$M" -p "a cat" -W 64 -H 64 --steps 4 --preview "$T/prev" --preview-every 2 -o "$T/p.png"
[ -s "$T/prev/step_002.png" ] && [ -s "$T/prev/step_004.png" ] && [ ! -e "$T/prev/step_001.png" ] && pass || fail "preview files"
grep -q "previews (2, each)" "$T/out.txt" && pass || { fail "preview cost missing from the timing table"; cat "$T/out.txt" >&2; }
ok "txt2img --preview FILE --preview-decoder vaelight" "$SDC" txt2img -m "$M" -p "a cat" -W 64 -H 64 --steps 2 --preview "$T/live.png" --preview-decoder vaelight -o "$T/q.png"
[ -s "$T/live.png" ] && [ -s "$T/q.png" ] && pass || fail "vaelight final or preview file"
grep -q "vaelight decoder" "$T/out.txt" && pass || fail "vaelight row missing"

# ---- refusals: before any work, one line, nothing written ---------------------------------------
refused "width not a multiple of 8" "$T/r1.png" "$SDC" txt2img -m "$M" -p x -W 100 -H 64 -o "$T/r1.png"
refused "height 2056" "$T/r2.png" "$SDC" txt2img -m "$M" -p x -W 64 -H 2056 -o "$T/r2.png"
refused "width 0" "$T/r3.png" "$SDC" txt2img -m "$M" -p x -W 0 -o "$T/r3.png"
refused "steps 0" "$T/r4.png" "$SDC" txt2img -m "$M" -p x --steps 0 -o "$T/r4.png"
refused "steps abc" "$T/r5.png" "$SDC" txt2img -m "$M" -p x --steps abc -o "$T/r5.png"
refused "unknown sampler" "$T/r6.png" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --sampler plms -o "$T/r6.png"
refused "unknown schedule" "$T/r7.png" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --schedule fancy -o "$T/r7.png"
refused "diffusers euler" "$T/r8.png" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --sampler euler --scheduler-compat diffusers -o "$T/r8.png"
refused "no model" "$T/r9.png" "$SDC" txt2img -p x -o "$T/r9.png"
refused "missing model" "$T/r10.png" "$SDC" txt2img -m "$T/none.safetensors" -p x -o "$T/r10.png"
refused "no prompt" "$T/r11.png" "$SDC" txt2img -m "$M" -o "$T/r11.png"
refused "bad output name" "$T/r12.jpg" "$SDC" txt2img -m "$M" -p x -o "$T/r12.jpg"
refused "output dir missing" "$T/nodir/x.png" "$SDC" txt2img -m "$M" -p x -W 8 -H 8 --steps 1 -o "$T/nodir/x.png"
refused "unknown option" "$T/r13.png" "$SDC" txt2img -m "$M" -p x --bogus -o "$T/r13.png"
refused "cfg nan" "$T/r14.png" "$SDC" txt2img -m "$M" -p x --cfg nan -o "$T/r14.png"
refused "clip skip 5 of 2 layers" "$T/r15.png" "$SDC" txt2img -m "$M" -p x -W 8 -H 8 --clip-skip 5 -o "$T/r15.png"
refused "init latent wrong size" "$T/r16.png" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --init-latent "$T/z.npy" -o "$T/r16.png"
refused "unet timestep 1000" "$T/r17.npy" "$SDC" unet -m "$M" --latent "$T/z.npy" --timestep 1000 --context "$T/c.npy" -o "$T/r17.npy"
refused "unet latent as context" "$T/r18.npy" "$SDC" unet -m "$M" --latent "$T/z.npy" --timestep 1 --context "$T/z.npy" -o "$T/r18.npy"
refused "decode bad latent" "$T/r19.png" "$SDC" decode -m "$M" --latent "$T/c.npy" -o "$T/r19.png"
refused "encode clip skip 0" "$T/r20.npy" "$SDC" encode -m "$M" -p x --clip-skip 0 -o "$T/r20.npy"
printf 'garbage' >"$T/bad.npy"
refused "decode garbage npy" "$T/r21.png" "$SDC" decode -m "$M" --latent "$T/bad.npy" -o "$T/r21.png"
refused "preview decoder other" "$T/r22.png" "$SDC" txt2img -m "$M" -p x --preview-decoder taesd -o "$T/r22.png"
refused "preview decoder missing" "$T/r23.png" "$SDC" txt2img -m "$M" -p x -W 8 -H 8 --preview "$T/pp" --decoder-path "$T/none.onnx" -o "$T/r23.png"
ls "$T"/*.tmp >/dev/null 2>&1 && fail "temporary files left behind" || pass

echo "txt2img.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
