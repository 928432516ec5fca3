#!/usr/bin/env bash
# tests/cli/info.sh: `sdc info` and `sdc mkmodel` from the command line.
#
#   bash tests/cli/info.sh SDC_EXE SHARED_DIR TMPDIR
#
# - info on the shared tiny checkpoint, text and --json: family, AutoV2 / sha256 (the manifest's),
#   components, per-component parameter counts and dtypes, buffers, ignored keys;
# - mkmodel --tiny --dtype f16 --seed 1: info reads it back; the same seed gives the same sha256
#   (sha256sum), another seed a different one; AutoV2 = the first 10 digits of sha256sum;
# - hostile inputs (empty file, directory, random bytes, pickles, GGUF, truncated safetensors,
#   missing path) and bad mkmodel arguments: exit status 1, exactly one line on stderr, nothing
#   on stdout, no crash, and no file left behind by a failed mkmodel.
. "$(dirname "$0")/lib/common.bash"
TINY_SHA=91767171baf2adcd9f3e3d799641f4e3b14804337ad7226c478e3e7a506e51c2

# ---- info on the shared tiny checkpoint ----------------------------------------------------
"$SDC" info "$TINY" >"$T/tiny.txt" 2>"$T/tiny.err"
rc=$?
[ $rc -eq 0 ] && pass || { fail "info tiny: exit $rc"; cat "$T/tiny.err" >&2; }
expect_grep "text family" '^family +sd15 \(an SD1\.5 checkpoint\)$' "$T/tiny.txt"
expect_grep "text autov2" '^autov2 +91767171ba$' "$T/tiny.txt"
expect_grep "text sha256" "^sha256 +$TINY_SHA\$" "$T/tiny.txt"
expect_grep "text size" '^size +68676732 bytes' "$T/tiny.txt"
expect_grep "text components" '^components +unet vae text_encoder$' "$T/tiny.txt"
expect_grep "text unet" '^  unet +params 8605284 .*tensors 686 .*dtypes F32$' "$T/tiny.txt"
expect_grep "text vae" '^  vae +params 5252487 .*tensors 248 .*dtypes F32$' "$T/tiny.txt"
expect_grep "text text_encoder" '^  text_encoder +params 3267136 .*tensors 36 .*dtypes F32$' "$T/tiny.txt"
expect_grep "text total" '^total_params +17124907 ' "$T/tiny.txt"
expect_grep "text buffers" '^buffers +13 ' "$T/tiny.txt"
expect_grep "text ignored" '^ignored_keys +0$' "$T/tiny.txt"
expect_grep "text context" '^context_dim +64$' "$T/tiny.txt"
expect_grep "text metadata" '^  mksd15\.note = random weights' "$T/tiny.txt"

"$SDC" info "$TINY" --json >"$T/tiny.json" 2>"$T/tiny.json.err"
rc=$?
[ $rc -eq 0 ] && pass || fail "info --json tiny: exit $rc"
[ "$(wc -l <"$T/tiny.json")" -eq 1 ] && pass || fail "--json is not one line"
expect_grep "json object" '^\{"file":".*\}$' "$T/tiny.json"
expect_grep "json family" '"family":"sd15"' "$T/tiny.json"
expect_grep "json autov2" '"autov2":"91767171ba"' "$T/tiny.json"
expect_grep "json sha256" "\"sha256\":\"$TINY_SHA\"" "$T/tiny.json"
expect_grep "json unet" '"unet":\{"present":true,"params":8605284,"tensors":686,"dtypes":\["F32"\]\}' "$T/tiny.json"
expect_grep "json vae" '"vae":\{"present":true,"params":5252487,' "$T/tiny.json"
expect_grep "json text" '"text_encoder":\{"present":true,"params":3267136,' "$T/tiny.json"
expect_grep "json totals" '"total_params":17124907,"tensors":983,"buffers":13,"ignored_keys":0,' "$T/tiny.json"
expect_grep "json metadata" '"metadata":\{.*"format":"pt"' "$T/tiny.json"
# stricter, where a JSON parser happens to be installed (not required)
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/tiny.json" && pass || fail "--json is not valid JSON"
fi

# a file name that needs JSON escaping (quote, backslash, tab)
odd="$T/a\"b\\c	d.safetensors"
ln -s "$TINY" "$odd"
"$SDC" info --json "$odd" >"$T/odd.json" 2>&1 || fail "info --json on an oddly named file"
expect_grep "json escaping" '"file":"[^"]*/a\\"b\\\\c\\td\.safetensors",' "$T/odd.json"
if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["file"].endswith("a\"b\\c\td.safetensors")' "$T/odd.json" && pass || fail "escaped file name does not round-trip"
fi
rm -f "$odd"

# ---- mkmodel --tiny --dtype f16 ---------------------------------------------------------------
"$SDC" mkmodel --tiny --dtype f16 --seed 1 -o "$T/t.safetensors" >"$T/mk.out" 2>"$T/mk.err"
rc=$?
[ $rc -eq 0 ] && pass || { fail "mkmodel tiny: exit $rc"; cat "$T/mk.err" >&2; }
expect_grep "mkmodel summary" '^wrote .*t\.safetensors: tiny SD1\.5, 983 tensors, 17124907 parameters, seed 1' "$T/mk.out"
"$SDC" mkmodel --tiny --dtype f16 --seed 1 --threads 3 -o "$T/t2.safetensors" >/dev/null 2>&1 || fail "mkmodel tiny (3 threads)"
"$SDC" mkmodel --tiny --dtype f16 --seed 2 -o "$T/t3.safetensors" >/dev/null 2>&1 || fail "mkmodel tiny seed 2"
s1=$(sha256sum "$T/t.safetensors" | cut -c1-64)
s2=$(sha256sum "$T/t2.safetensors" | cut -c1-64)
s3=$(sha256sum "$T/t3.safetensors" | cut -c1-64)
[ -n "$s1" ] && [ "$s1" = "$s2" ] && pass || fail "same seed, different files: $s1 vs $s2"
[ "$s1" != "$s3" ] && pass || fail "seeds 1 and 2 gave the same file"
ls "$T"/*.tmp >/dev/null 2>&1 && fail "mkmodel left a .tmp file" || pass

"$SDC" info "$T/t.safetensors" >"$T/t.txt" 2>&1 || fail "info on the generated model"
expect_grep "generated family" '^family +sd15 ' "$T/t.txt"
expect_grep "generated autov2" "^autov2 +${s1:0:10}\$" "$T/t.txt"
expect_grep "generated unet" '^  unet +params 8605284 .*dtypes F16$' "$T/t.txt"
expect_grep "generated text" '^  text_encoder +params 3267136 .*dtypes F16$' "$T/t.txt"
expect_grep "generated note" '^  sdc\.note = random weights' "$T/t.txt"
"$SDC" info --json "$T/t.safetensors" >"$T/t.json" 2>&1 || fail "info --json on the generated model"
expect_grep "generated json sha256" "\"sha256\":\"$s1\"" "$T/t.json"
# the generated tiny model has the shared checkpoint's tensor set: same counts everywhere
expect_grep "generated totals" '"total_params":17124907,"tensors":983,"buffers":13,"ignored_keys":0,' "$T/t.json"

# ---- hostile inputs -------------------------------------------------------------------------
: >"$T/empty.safetensors"
head -c 8192 /dev/urandom >"$T/random.safetensors"
printf 'PK\003\004\024\000\000\000\000\000archive/data.pkl' >"$T/zip.ckpt"
printf '\200\002\212\012\154\374\234\106\371\040\152\250\120\031' >"$T/legacy.pt"
printf 'GGUF\003\000\000\000\000\000\000\000\000\000\000\000' >"$T/model.gguf"
head -c 5000 "$TINY" >"$T/truncated.safetensors"
printf '\017\000\000\000\000\000\000\000{"a":{"dtype":"' >"$T/badjson.safetensors"
head -c $((8 + 128480 + 4096)) "$TINY" >"$T/shortdata.safetensors"  # whole header, data cut
mkdir -p "$T/dir.safetensors"

for f in empty.safetensors random.safetensors zip.ckpt legacy.pt model.gguf truncated.safetensors \
         badjson.safetensors shortdata.safetensors dir.safetensors no-such-file.safetensors; do
    expect_refusal -s "info $f" "$SDC" info "$T/$f"
    expect_refusal -s "info --json $f" "$SDC" info --json "$T/$f"
done
"$SDC" info "$T/legacy.pt" 2>"$T/pk.err"
expect_grep "pickle message" 'legacy\.pt: a \.ckpt/pickle checkpoint; sdc reads \.safetensors only \(convert it first\)$' "$T/pk.err"
expect_refusal -s "info without MODEL" "$SDC" info
expect_refusal -s "info bad option" "$SDC" info --yaml "$TINY"

# ---- mkmodel refusals: one line, and no file left behind ---------------------------------------
before=$(ls -A "$T" | sort)
expect_refusal -s "mkmodel into a missing directory" "$SDC" mkmodel --tiny -o "$T/nodir/x.safetensors"
[ ! -e "$T/nodir" ] && pass || fail "mkmodel created $T/nodir"
expect_refusal -s "mkmodel onto a directory" "$SDC" mkmodel --tiny -o "$T/dir.safetensors"
expect_refusal -s "mkmodel without a size" "$SDC" mkmodel -o "$T/x.safetensors"
expect_refusal -s "mkmodel --tiny --full" "$SDC" mkmodel --tiny --full -o "$T/x.safetensors"
expect_refusal -s "mkmodel --dtype f8" "$SDC" mkmodel --tiny --dtype f8 -o "$T/x.safetensors"
expect_refusal -s "mkmodel --seed -1" "$SDC" mkmodel --tiny --seed -1 -o "$T/x.safetensors"
expect_refusal -s "mkmodel --seed abc" "$SDC" mkmodel --tiny --seed abc -o "$T/x.safetensors"
expect_refusal -s "mkmodel --threads 0" "$SDC" mkmodel --tiny --threads 0 -o "$T/x.safetensors"
expect_refusal -s "mkmodel without -o" "$SDC" mkmodel --tiny
expect_refusal -s "mkmodel -o without a value" "$SDC" mkmodel --tiny -o
expect_refusal -s "mkmodel unknown option" "$SDC" mkmodel --tiny --fast -o "$T/x.safetensors"
after=$(ls -A "$T" | grep -v '^\(out\|err\)\.txt$' | sort)
before=$(echo "$before" | grep -v '^\(out\|err\)\.txt$')
[ "$before" = "$after" ] && pass || fail "failed mkmodel runs changed $T: $(diff <(echo "$before") <(echo "$after"))"

rm -rf "$T"
finish
