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
. "$(dirname "$0")/lib/common.bash"
M=$TINY

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
expect_refusal -f "$T/r1.png" "width not a multiple of 8" "$SDC" txt2img -m "$M" -p x -W 100 -H 64 -o "$T/r1.png"
expect_refusal -f "$T/r2.png" "height 2056" "$SDC" txt2img -m "$M" -p x -W 64 -H 2056 -o "$T/r2.png"
expect_refusal -f "$T/r3.png" "width 0" "$SDC" txt2img -m "$M" -p x -W 0 -o "$T/r3.png"
expect_refusal -f "$T/r4.png" "steps 0" "$SDC" txt2img -m "$M" -p x --steps 0 -o "$T/r4.png"
expect_refusal -f "$T/r5.png" "steps abc" "$SDC" txt2img -m "$M" -p x --steps abc -o "$T/r5.png"
expect_refusal -f "$T/r6.png" "unknown sampler" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --sampler plms -o "$T/r6.png"
expect_refusal -f "$T/r7.png" "unknown schedule" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --schedule fancy -o "$T/r7.png"
expect_refusal -f "$T/r8.png" "diffusers euler" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --sampler euler --scheduler-compat diffusers -o "$T/r8.png"
expect_refusal -f "$T/r9.png" "no model" "$SDC" txt2img -p x -o "$T/r9.png"
expect_refusal -f "$T/r10.png" "missing model" "$SDC" txt2img -m "$T/none.safetensors" -p x -o "$T/r10.png"
expect_refusal -f "$T/r11.png" "no prompt" "$SDC" txt2img -m "$M" -o "$T/r11.png"
expect_refusal -f "$T/r12.jpg" "bad output name" "$SDC" txt2img -m "$M" -p x -o "$T/r12.jpg"
expect_refusal -f "$T/nodir/x.png" "output dir missing" "$SDC" txt2img -m "$M" -p x -W 8 -H 8 --steps 1 -o "$T/nodir/x.png"
expect_refusal -f "$T/r13.png" "unknown option" "$SDC" txt2img -m "$M" -p x --bogus -o "$T/r13.png"
expect_refusal -f "$T/r14.png" "cfg nan" "$SDC" txt2img -m "$M" -p x --cfg nan -o "$T/r14.png"
expect_refusal -f "$T/r15.png" "clip skip 5 of 2 layers" "$SDC" txt2img -m "$M" -p x -W 8 -H 8 --clip-skip 5 -o "$T/r15.png"
expect_refusal -f "$T/r16.png" "init latent wrong size" "$SDC" txt2img -m "$M" -p x -W 64 -H 64 --init-latent "$T/z.npy" -o "$T/r16.png"
expect_refusal -f "$T/r17.npy" "unet timestep 1000" "$SDC" unet -m "$M" --latent "$T/z.npy" --timestep 1000 --context "$T/c.npy" -o "$T/r17.npy"
expect_refusal -f "$T/r18.npy" "unet latent as context" "$SDC" unet -m "$M" --latent "$T/z.npy" --timestep 1 --context "$T/z.npy" -o "$T/r18.npy"
expect_refusal -f "$T/r19.png" "decode bad latent" "$SDC" decode -m "$M" --latent "$T/c.npy" -o "$T/r19.png"
expect_refusal -f "$T/r20.npy" "encode clip skip 0" "$SDC" encode -m "$M" -p x --clip-skip 0 -o "$T/r20.npy"
printf 'garbage' >"$T/bad.npy"
expect_refusal -f "$T/r21.png" "decode garbage npy" "$SDC" decode -m "$M" --latent "$T/bad.npy" -o "$T/r21.png"
expect_refusal -f "$T/r22.png" "preview decoder other" "$SDC" txt2img -m "$M" -p x --preview-decoder taesd -o "$T/r22.png"
expect_refusal -f "$T/r23.png" "preview decoder missing" "$SDC" txt2img -m "$M" -p x -W 8 -H 8 --preview "$T/pp" --decoder-path "$T/none.onnx" -o "$T/r23.png"
ls "$T"/*.tmp >/dev/null 2>&1 && fail "temporary files left behind" || pass

finish
