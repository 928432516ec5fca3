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
. "$(dirname "$0")/lib/common.bash"
mkdir -p "$T/emb"
M=$TINY
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
expect_refusal -f "$T/x.txt" -n ".safetensors, .pt or .bin" "mkmodel bad extension" "$SDC" mkmodel --embedding "$T/x.txt" --vectors 1
expect_refusal -f "$T/y.pt" -n "--vectors" "mkmodel no --vectors" "$SDC" mkmodel --embedding "$T/y.pt"
expect_refusal -f "$T/z.pt" -n "no --tiny" "mkmodel --embedding with --tiny" "$SDC" mkmodel --tiny --embedding "$T/z.pt" --vectors 1
expect_refusal -f "$T/w.pt" -n "--vectors" "mkmodel negative vectors" "$SDC" mkmodel --embedding "$T/w.pt" --vectors -1

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
expect_refusal -f "$T/wide.npy" -n "wide.pt" "encode 768-wide" "$SDC" encode --a1111 -m "$M" -p "a wide cat" --embeddings "$T/emb" -o "$T/wide.npy"
expect_refusal -f "$T/n.npy" -n "--a1111" "encode --embeddings without --a1111" "$SDC" encode -m "$M" -p "x" --embeddings "$T/emb" -o "$T/n.npy"

# ---- txt2img --embeddings ---------------------------------------------------------------------
ok "txt2img" "$SDC" txt2img -m "$M" -p "a mystyle cat" -n "safe" --embeddings "$T/emb" -W 64 -H 64 --steps 2 --seed 1 -o "$T/a.png"
field="TI hashes: \"mystyle: $(short "$T/emb/mystyle.pt"), safe: $(short "$T/emb/safe.safetensors")\", Version: sdc"
grep -aqF "$field" "$T/a.png" && pass || { fail "PNG parameters lack '$field'"; strings "$T/a.png" | grep -a Steps >&2; }
ok "txt2img without" "$SDC" txt2img -m "$M" -p "a mystyle cat" -n "safe" -W 64 -H 64 --steps 2 --seed 1 -o "$T/b.png"
grep -aq "TI hashes" "$T/b.png" && fail "TI hashes without --embeddings" || pass
cmp -s "$T/a.png" "$T/b.png" && fail "embeddings changed nothing in the picture" || pass
expect_refusal -f "$T/c.png" -n "768" "txt2img 768-wide" "$SDC" txt2img -m "$M" -p "wide" --embeddings "$T/emb" -W 64 -H 64 --steps 1 -o "$T/c.png"
expect_refusal -f "$T/d.png" -n "$T/nodir" "txt2img missing dir" "$SDC" txt2img -m "$M" -p "x" --embeddings "$T/nodir" -W 64 -H 64 --steps 1 -o "$T/d.png"
expect_refusal -f "$T/e.png" -n "raw prompts" "txt2img raw prompt" "$SDC" txt2img -m "$M" -p "x" --raw-prompt --embeddings "$T/emb" -W 64 -H 64 --steps 1 -o "$T/e.png"

finish
