#!/usr/bin/env bash
# tests/cli/bench.sh: `sdc bench` output shape on the tiny model (no timing assertions).
#
#   bash tests/cli/bench.sh SDC_EXE SHARED_DIR TMPDIR
#
# - --json prints one JSON object per run, one line each, with every documented key, sizes and
#   modes as asked, positive FLOP counts and a peak RSS;
# - the table mode prints the FMA peak line, a header and one row (plus its op-kind line) per run;
# - txt2img --low-memory writes the same PNG as the normal path at 64x64 (one VAE tile);
# - bad arguments: exit 1, one line on stderr.
. "$(dirname "$0")/lib/common.bash"
M=$TINY

# ---- --json: one object per line -------------------------------------------------------------
if "$SDC" bench -m "$M" -W 64 -H 64 --steps 2 -t 2 --json >"$T/one.json" 2>"$T/err.txt"; then pass
else fail "bench --json: exit $?"; cat "$T/err.txt" >&2; fi
[ "$(wc -l <"$T/one.json")" -eq 1 ] && pass || fail "expected one JSON line, got $(wc -l <"$T/one.json")"
line=$(head -n 1 "$T/one.json")
case "$line" in "{"*"}") pass ;; *) fail "not a JSON object: $line" ;; esac
for key in width height steps threads text_encoder_s unet_step_s vae_s total_s peak_rss_mb unet_gflops \
    peak_gflops peak_isa unet_peak_ratio unet_step_gflop ops conv linear attention other low_memory; do
    echo "$line" | grep -q "\"$key\":" && pass || fail "key $key missing: $line"
done
echo "$line" | grep -q '"width":64,"height":64,"steps":2,"threads":2,"low_memory":false' && pass ||
    fail "size, steps, threads or mode not as asked: $line"
# numbers: the FLOP count and the peak are positive, RSS is plausible (1 MB .. 100 GB)
num() { echo "$line" | sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p"; }
for key in unet_step_gflop peak_gflops unet_gflops unet_step_s vae_s; do
    v=$(num "$key")
    awk -v v="$v" 'BEGIN { exit !(v + 0 > 0) }' && pass || fail "$key is not positive: '$v'"
done
rss=$(num peak_rss_mb)
awk -v v="$rss" 'BEGIN { exit !(v + 0 >= 1 && v + 0 < 100000) }' && pass || fail "peak_rss_mb '$rss' not plausible"
# the python-free JSON check: braces balance and no NaN/inf slipped into the numbers
opens=$(echo "$line" | tr -cd '{' | wc -c)
closes=$(echo "$line" | tr -cd '}' | wc -c)
[ "$opens" -eq "$closes" ] && [ "$opens" -eq 6 ] && pass || fail "unbalanced or unexpected braces: $opens/$closes"
echo "$line" | grep -qiE 'nan|inf' && fail "NaN or inf in the output" || pass

# ---- two sizes, both memory modes: four lines in order -------------------------------------------
if "$SDC" bench -m "$M" --sizes 64x64,96x64 --memory both --steps 1 -t 1 --json >"$T/four.json" 2>"$T/err.txt"; then pass
else fail "bench --sizes --memory both: exit $?"; cat "$T/err.txt" >&2; fi
[ "$(wc -l <"$T/four.json")" -eq 4 ] && pass || fail "expected 4 JSON lines, got $(wc -l <"$T/four.json")"
order=$(sed -n 's/.*"width":\([0-9]*\),"height":\([0-9]*\),.*"low_memory":\([a-z]*\).*/\1x\2:\3/p' "$T/four.json" | tr '\n' ' ')
[ "$order" = "64x64:false 64x64:true 96x64:false 96x64:true " ] && pass || fail "runs out of order: $order"

# ---- the table ---------------------------------------------------------------------------------
if "$SDC" bench -m "$M" -W 64 -H 64 --steps 1 --low-memory >"$T/table.txt" 2>"$T/err.txt"; then pass
else fail "bench table: exit $?"; cat "$T/err.txt" >&2; fi
grep -q "^FP32 FMA peak: [0-9.]* GFLOP/s" "$T/table.txt" && pass || fail "no peak line"
grep -q "^size .*unet_step.*rss_MB.*unet_GF/s" "$T/table.txt" && pass || fail "no header"
grep -q "^64x64 *low " "$T/table.txt" && pass || fail "no 64x64 low-memory row"
grep -q "conv .* linear .* attention .* other" "$T/table.txt" && pass || fail "no op-kind line"
# --json-out: the table on stdout and the JSON line appended to the file
"$SDC" bench -m "$M" -W 64 -H 64 --steps 1 -t 1 --json-out "$T/out.jsonl" >"$T/table2.txt" 2>"$T/err.txt" && pass ||
    fail "bench --json-out: exit $?"
grep -q "^64x64 *normal " "$T/table2.txt" && pass || fail "--json-out: no table row"
[ "$(wc -l <"$T/out.jsonl")" -eq 1 ] && grep -q '"width":64,"height":64' "$T/out.jsonl" && pass ||
    fail "--json-out: the file does not hold one JSON line"

# ---- txt2img --low-memory: same picture at 64x64 -------------------------------------------------
"$SDC" txt2img -m "$M" -p "a cat" -n blurry -W 64 -H 64 --steps 2 -t 2 -o "$T/n.png" >/dev/null 2>&1 &&
    "$SDC" txt2img -m "$M" -p "a cat" -n blurry -W 64 -H 64 --steps 2 -t 2 --low-memory -o "$T/l.png" >/dev/null 2>&1 &&
    cmp -s "$T/n.png" "$T/l.png" && pass || fail "txt2img --low-memory differs from the normal path at 64x64"

# ---- refusals ----------------------------------------------------------------------------------
expect_refusal "no model" "$SDC" bench -W 64 -H 64
expect_refusal "missing model" "$SDC" bench -m "$T/none.safetensors"
expect_refusal "bad size list" "$SDC" bench -m "$M" --sizes 64x64,100x64
expect_refusal "size not WxH" "$SDC" bench -m "$M" --sizes 64
expect_refusal "width not a multiple of 8" "$SDC" bench -m "$M" -W 60 -H 64
expect_refusal "steps 0" "$SDC" bench -m "$M" --steps 0
expect_refusal "bad memory mode" "$SDC" bench -m "$M" --memory tiny
expect_refusal "sizes and -W" "$SDC" bench -m "$M" --sizes 64x64 -W 64
expect_refusal "unknown option" "$SDC" bench -m "$M" --bogus
expect_refusal "stray argument" "$SDC" bench -m "$M" extra
expect_refusal "json-out in a missing directory" "$SDC" bench -m "$M" -W 64 -H 64 --steps 1 --json-out "$T/nodir/x.jsonl"

finish
