#!/usr/bin/env bash
# tests/cli/embeddings.sh: textual-inversion embeddings from the command line, on the tiny model.
#
#   bash tests/cli/embeddings.sh SDC_EXE SHARED_DIR TMPDIR
#
# - sdc mkmodel --embedding writes .pt / .bin / .safetensors embeddings (and refuses bad requests);
# - sdc encode --a1111 --embeddings: the conditioning changes, "TI hashes" names each used file
#   with the first 12 hex digits of its sha256 (what sha256sum prints);
# - sdc txt2img --embeddings: the PNG's parameters carry webui's TI hashes field, negative prompt's
#   embeddings last; a 768-wide embedding is refused naming the file; a missing directory too;
# - refusals: exit 1, one line on stderr, no output file.
set -u
SDC=$1
SHARED=$2
T=$3
rm -rf "$T"
mkdir -p "$T/emb"
M=$SHARED/testdata/tiny/sd15-tiny-f32.safetensors
passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
ok() { # ok DESCRIPTION CMD...: the command must succeed
    local d=$1; shift
    if "$@" >"$T/out.txt" 2>"$T/err.txt"; then pass; else fail "$d: exit $?"; cat "$T/err.txt" >&2; fi
}
refused() { # refused DESCRIPTION OUTFILE NEEDLE CMD...: exit 1, one stderr line containing NEEDLE, no output file
    local d=$1 out=$2 needle=$3; shift 3
    "$@" >"$T/out.txt" 2>"$T/err.txt"
    local rc=$?
    local lines
    lines=$(wc -l <"$T/err.txt")
    if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && [ ! -e "$out" ] && grep -qF -- "$needle" "$T/err.txt"; then pass
    else fail "$d: exit $rc, $lines stderr lines, output exists: $([ -e "$out" ] && echo yes || echo no)"; cat "$T/err.txt" >&2; fi
}
short() { sha256sum "$1" | cut -c1-12; }

# ---- mkmodel --embedding ----------------------------------------------------------------------
ok "mkmodel .pt" "$SDC" mkmodel --embedding "$T/emb/mystyle.pt" --vectors 3 --width 64 --seed 1
grep -q "embedding \[3, 64\] f32" "$T/out.txt" && pass || fail "mkmodel summary: $(cat "$T/out.txt")"
ok "mkmodel .bin" "$SDC" mkmodel --embedding "$T/emb/concept.bin" --vectors 2 --width 64 --seed 2
ok "mkmodel .safetensors f16" "$SDC" mkmodel --embedding "$T/emb/safe.safetensors" --vectors 4 --width 64 --dtype f16 --seed 3
ok "mkmodel 768-wide" "$SDC" mkmodel --embedding "$T/emb/wide.pt" --vectors 2 --seed 4
head -c 4 "$T/emb/mystyle.pt" | od -An -tx1 | grep -q "50 4b 03 04" && pass || fail ".pt is not a zip"
mkdir -p "$T/copy"
ok "same seed" "$SDC" mkmodel --embedding "$T/copy/mystyle.pt" --vectors 3 --width 64 --seed 1
cmp -s "$T/emb/mystyle.pt" "$T/copy/mystyle.pt" && pass || fail "same seed gives different files"
refused "mkmodel bad extension" "$T/x.txt" ".safetensors, .pt or .bin" "$SDC" mkmodel --embedding "$T/x.txt" --vectors 1
refused "mkmodel no --vectors" "$T/y.pt" "--vectors" "$SDC" mkmodel --embedding "$T/y.pt"
refused "mkmodel --embedding with --tiny" "$T/z.pt" "no --tiny" "$SDC" mkmodel --tiny --embedding "$T/z.pt" --vectors 1
refused "mkmodel negative vectors" "$T/w.pt" "--vectors" "$SDC" mkmodel --embedding "$T/w.pt" --vectors -1

# ---- encode --a1111 --embeddings --------------------------------------------------------------
ok "encode without" "$SDC" encode --a1111 -m "$M" -p "a mystyle cat" -o "$T/plain.npy"
ok "encode with" "$SDC" encode --a1111 -m "$M" -p "a mystyle cat" --embeddings "$T/emb" -o "$T/ti.npy"
cmp -s "$T/plain.npy" "$T/ti.npy" && fail "the embedding changed nothing" || pass
grep -qx "TI hashes: mystyle: $(short "$T/emb/mystyle.pt")" "$T/out.txt" && pass || fail "encode TI hashes: $(cat "$T/out.txt")"
ok "encode three formats" "$SDC" encode --a1111 -m "$M" -p "concept, safe and mystyle" --embeddings "$T/emb" -o "$T/three.npy"
want="TI hashes: concept: $(short "$T/emb/concept.bin"), safe: $(short "$T/emb/safe.safetensors"), mystyle: $(short "$T/emb/mystyle.pt")"
grep -qxF "$want" "$T/out.txt" && pass || fail "three formats: '$(cat "$T/out.txt")', want '$want'"
ok "encode, no embedding used" "$SDC" encode --a1111 -m "$M" -p "a cat" --embeddings "$T/emb" -o "$T/none.npy"
grep -q "TI hashes" "$T/out.txt" && fail "TI hashes without an embedding" || pass
ok "encode a cat" "$SDC" encode --a1111 -m "$M" -p "a cat" -o "$T/none0.npy"
cmp -s "$T/none.npy" "$T/none0.npy" && pass || fail "unused embeddings changed the conditioning of 'a cat'"
refused "encode 768-wide" "$T/wide.npy" "wide.pt" "$SDC" encode --a1111 -m "$M" -p "a wide cat" --embeddings "$T/emb" -o "$T/wide.npy"
refused "encode --embeddings without --a1111" "$T/n.npy" "--a1111" "$SDC" encode -m "$M" -p "x" --embeddings "$T/emb" -o "$T/n.npy"

# ---- txt2img --embeddings ---------------------------------------------------------------------
ok "txt2img" "$SDC" txt2img -m "$M" -p "a mystyle cat" -n "safe" --embeddings "$T/emb" -W 64 -H 64 --steps 2 --seed 1 -o "$T/a.png"
field="TI hashes: \"mystyle: $(short "$T/emb/mystyle.pt"), safe: $(short "$T/emb/safe.safetensors")\", Version: sdc"
grep -aqF "$field" "$T/a.png" && pass || { fail "PNG parameters lack '$field'"; strings "$T/a.png" | grep -a Steps >&2; }
ok "txt2img without" "$SDC" txt2img -m "$M" -p "a mystyle cat" -n "safe" -W 64 -H 64 --steps 2 --seed 1 -o "$T/b.png"
grep -aq "TI hashes" "$T/b.png" && fail "TI hashes without --embeddings" || pass
cmp -s "$T/a.png" "$T/b.png" && fail "embeddings changed nothing in the picture" || pass
refused "txt2img 768-wide" "$T/c.png" "768" "$SDC" txt2img -m "$M" -p "wide" --embeddings "$T/emb" -W 64 -H 64 --steps 1 -o "$T/c.png"
refused "txt2img missing dir" "$T/d.png" "$T/nodir" "$SDC" txt2img -m "$M" -p "x" --embeddings "$T/nodir" -W 64 -H 64 --steps 1 -o "$T/d.png"
refused "txt2img raw prompt" "$T/e.png" "raw prompts" "$SDC" txt2img -m "$M" -p "x" --raw-prompt --embeddings "$T/emb" -W 64 -H 64 --steps 1 -o "$T/e.png"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
