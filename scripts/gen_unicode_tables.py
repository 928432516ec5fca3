#!/usr/bin/env python3
"""gen_unicode_tables.py: writes src/model/unicode_tables.{c,h}, the Unicode data that the CLIP
tokenizer (src/model/clip_tokenizer.c) needs to reproduce the reference tokenizer exactly.

The reference is transformers' slow CLIPTokenizer with ftfy 6.1.1 on CPython 3.11, whose pieces are:
  ftfy.fix_text  -> HTML entities (html.entities.html5 + ftfy's all-caps variants), C1 controls as
                    windows-1252, fullwidth/halfwidth forms (NFKC of U+FF01..U+FFEF), NFC;
  whitespace_clean -> str.isspace;
  str.lower()    -> full lowercase mapping, Cased / Case_Ignorable for the final sigma;
  the pre-token regex (the `regex` module, IGNORECASE) -> [\\p{L}], [\\p{N}], [^\\s\\p{L}\\p{N}].
Run it once with the Python the reference used (Debian bookworm's /usr/bin/python3 3.11 with
python3-regex) and commit the output; the build never runs Python:

    /usr/bin/python3 scripts/gen_unicode_tables.py            # writes src/model/unicode_tables.c/.h

Without the `regex` module the letter/number classes fall back to unicodedata categories (the file
header says which source was used). The script checks its own tables: an NFC written the way the C
code does it is compared with unicodedata.normalize on every code point and on random strings.
"""
import html
import html.entities
import os
import random
import sys
import unicodedata

try:
    import regex
except ImportError:  # pragma: no cover
    regex = None

MAXCP = 0x110000
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_C = os.path.join(HERE, "..", "src", "model", "unicode_tables.c")
OUT_H = os.path.join(HERE, "..", "src", "model", "unicode_tables.h")


def ranges_of(pred):
    """Sorted [lo, hi] inclusive ranges of the code points where pred holds."""
    out, start = [], None
    for cp in range(MAXCP):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, MAXCP - 1))
    return out


def is_surrogate(cp):
    return 0xD800 <= cp <= 0xDFFF


# ---- character classes of the pre-token regex ------------------------------------------------
if regex is not None:
    RX_L = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    RX_N = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    RX_P = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    RX_S = regex.compile(r"\s")
    CLASS_SOURCE = "the regex module %s (IGNORECASE, as the reference pattern)" % regex.__version__

    def is_letter(cp):
        return not is_surrogate(cp) and RX_L.match(chr(cp)) is not None

    def is_number(cp):
        return not is_surrogate(cp) and RX_N.match(chr(cp)) is not None
else:
    CLASS_SOURCE = "unicodedata categories L* / N* (regex module not installed)"

    def is_letter(cp):
        return unicodedata.category(chr(cp)).startswith("L")

    def is_number(cp):
        return unicodedata.category(chr(cp)).startswith("N")


def is_space(cp):
    """regex's \\s (whitespace_clean uses `regex`): str.isspace() less U+001C..U+001F."""
    if regex is not None:
        return not is_surrogate(cp) and RX_S.match(chr(cp)) is not None
    return chr(cp).isspace() and not 0x1C <= cp <= 0x1F


def is_decimal(cp):
    return not is_surrogate(cp) and chr(cp).isdecimal()


# ---- lowercase: str.lower() per character, and the final-sigma context classes --------------
def lower_of(cp):
    return chr(cp).lower() if not is_surrogate(cp) else chr(cp)


def sigma_probe(s):
    return s.lower()


def cased_not_ignorable(cp):
    # "A" + "Σ" + c: the sigma is final unless c is cased and not case-ignorable.
    c = chr(cp)
    return sigma_probe("A\u03a3" + c)[1] == "\u03c3"


def neither_cased_nor_ignorable(cp):
    # "A" + c + "Σ": an ignorable c is skipped (cased "A" before it: final); otherwise final iff c cased.
    c = chr(cp)
    return sigma_probe("A" + c + "\u03a3")[2] == "\u03c3"


def case_ignorable(cp):
    if is_surrogate(cp):
        return False
    return not cased_not_ignorable(cp) and not neither_cased_nor_ignorable(cp)


def cased(cp):
    # Only consulted for characters that are not case-ignorable (as CPython's handle_capital_sigma).
    if is_surrogate(cp):
        return False
    return cased_not_ignorable(cp)


def lower_runs():
    """(start, count, stride, delta): lower(start + k*stride) = start + k*stride + delta."""
    pairs = []
    multi = []
    for cp in range(MAXCP):
        if is_surrogate(cp) or cp == 0x3A3:
            continue
        lo = lower_of(cp)
        if lo == chr(cp):
            continue
        if len(lo) == 1:
            pairs.append((cp, ord(lo) - cp))
        else:
            multi.append((cp, [ord(x) for x in lo]))
    pairs.append((0x3A3, 0x3C3 - 0x3A3))  # plain sigma; the final form is decided in the C code
    pairs.sort()
    runs = []
    i = 0
    while i < len(pairs):
        cp, d = pairs[i]
        # try stride 1 or 2
        best = (1, 1)
        for stride in (1, 2):
            n = 1
            while (i + n < len(pairs) and pairs[i + n][0] == cp + n * stride
                   and pairs[i + n][1] == d):
                n += 1
            if n > best[0]:
                best = (n, stride)
        n, stride = best
        runs.append((cp, n, stride, d))
        i += n
    return runs, multi


# ---- NFC -------------------------------------------------------------------------------------
SBASE, LBASE, VBASE, TBASE = 0xAC00, 0x1100, 0x1161, 0x11A7
LCOUNT, VCOUNT, TCOUNT = 19, 21, 28
NCOUNT = VCOUNT * TCOUNT
SCOUNT = LCOUNT * NCOUNT


def canon_decomp(cp):
    if is_surrogate(cp) or SBASE <= cp < SBASE + SCOUNT:
        return None
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    return [int(x, 16) for x in d.split()]


def build_nfc():
    ccc = {}
    for cp in range(MAXCP):
        if not is_surrogate(cp):
            c = unicodedata.combining(chr(cp))
            if c:
                ccc[cp] = c
    decomp = {}
    comp = {}
    for cp in range(MAXCP):
        d = canon_decomp(cp)
        if d is None:
            continue
        assert 1 <= len(d) <= 2, (hex(cp), d)
        decomp[cp] = d
        if len(d) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            comp[(d[0], d[1])] = cp
    return ccc, decomp, comp


def py_nfc(s, ccc, decomp, comp):
    """The algorithm of clip_tokenizer.c's nfc(), used to check the tables."""
    out = []

    def dec(cp):
        if SBASE <= cp < SBASE + SCOUNT:
            si = cp - SBASE
            out.append(LBASE + si // NCOUNT)
            out.append(VBASE + (si % NCOUNT) // TCOUNT)
            if si % TCOUNT:
                out.append(TBASE + si % TCOUNT)
            return
        d = decomp.get(cp)
        if d is None:
            out.append(cp)
        else:
            for x in d:
                dec(x)

    for ch in s:
        dec(ord(ch))
    # canonical ordering (stable insertion sort within runs of non-zero ccc)
    for i in range(1, len(out)):
        c = ccc.get(out[i], 0)
        if c == 0:
            continue
        j = i
        while j > 0 and ccc.get(out[j - 1], 0) > c:
            out[j - 1], out[j] = out[j], out[j - 1]
            j -= 1
    # composition (the sample algorithm of UAX #15)
    if not out:
        return ""

    def compose(a, b):
        if LBASE <= a < LBASE + LCOUNT and VBASE <= b < VBASE + VCOUNT:
            return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT
        if SBASE <= a < SBASE + SCOUNT and (a - SBASE) % TCOUNT == 0 and TBASE < b < TBASE + TCOUNT:
            return a + (b - TBASE)
        return comp.get((a, b))

    res = [out[0]]
    starter = 0
    last = ccc.get(out[0], 0)
    if last != 0:
        last = 256  # a leading combining mark never takes part in composition
    for cp in out[1:]:
        c = ccc.get(cp, 0)
        composed = compose(res[starter], cp)
        if composed is not None and (last < c or last == 0):
            res[starter] = composed
            continue
        if c == 0:
            starter = len(res)
        last = c
        res.append(cp)
    return "".join(chr(x) for x in res)


def check_nfc(ccc, decomp, comp):
    bad = 0
    for cp in range(MAXCP):
        if is_surrogate(cp):
            continue
        s = chr(cp)
        if py_nfc(s, ccc, decomp, comp) != unicodedata.normalize("NFC", s):
            bad += 1
    rng = random.Random(1)
    pool = (list(ccc.keys()) + list(decomp.keys()) + [k[0] for k in comp] + [k[1] for k in comp]
            + list(range(0x1100, 0x1113)) + list(range(0x1161, 0x1176)) + list(range(0x11A8, 0x11C3))
            + [0xAC00, 0xAC01, 0xD7A3] + list(range(0x61, 0x7B)))
    for _ in range(200000):
        s = "".join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 6)))
        if py_nfc(s, ccc, decomp, comp) != unicodedata.normalize("NFC", s):
            bad += 1
            if bad < 5:
                print("NFC mismatch", [hex(ord(c)) for c in s], file=sys.stderr)
    if bad:
        sys.exit("gen_unicode_tables: NFC self-check failed (%d cases)" % bad)


# ---- ftfy tables -----------------------------------------------------------------------------
def html_entities():
    """ftfy 6.1.1 chardata._build_html_entities(), restricted to names its regex can match."""
    ents = {}
    for name, char in html.entities.html5.items():
        if name.endswith(";"):
            ents["&" + name] = char
            if name == name.lower():
                up = "&" + name.upper()
                if html.unescape(up) == up:
                    ents[up] = char.upper()
    out = []
    for k, v in ents.items():
        body = k[1:-1]
        if 1 <= len(body) <= 24 and all(c.isascii() and c.isalnum() for c in body):
            out.append((body.encode(), v.encode("utf-8")))
    out.sort()
    return out


def width_map():
    m = {0x3000: [0x20]}
    for cp in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize("NFKC", chr(cp))
        if alt != chr(cp):
            assert len(alt) <= 2
            m[cp] = [ord(x) for x in alt]
    return sorted(m.items())


def c1_map():
    out = []
    for b in range(0x80, 0xA0):
        try:
            out.append(ord(bytes([b]).decode("cp1252")))
        except UnicodeDecodeError:
            out.append(b)  # ftfy's "sloppy" codec passes unassigned bytes through as Latin-1
    return out


# ---- writers ---------------------------------------------------------------------------------
def c_str(bs):
    out = '"'
    for b in bs:
        if 0x20 <= b < 0x7F and b not in (0x22, 0x5C, 0x3F):
            out += chr(b)
        else:
            out += "\\%03o" % b
    return out + '"'


def emit_ranges(f, name, rs, what):
    f.write("/* %s: %d ranges */\n" % (what, len(rs)))
    f.write("const sdc_uc_range %s[] = {\n" % name)
    for i in range(0, len(rs), 6):
        f.write("    " + " ".join("{0x%X, 0x%X}," % r for r in rs[i:i + 6]) + "\n")
    f.write("};\nconst size_t %s_count = %d;\n\n" % (name, len(rs)))


def main():
    print("classes from", CLASS_SOURCE, file=sys.stderr)
    letter = ranges_of(is_letter)
    number = ranges_of(is_number)
    space = ranges_of(is_space)
    decimal = ranges_of(is_decimal)
    for cp in range(MAXCP):  # the C code's isspace() adds U+001C..U+001F to this table
        assert (is_space(cp) or 0x1C <= cp <= 0x1F) == (not is_surrogate(cp) and chr(cp).isspace())
    skip = []
    if regex is not None:
        # The classes must not overlap, and regex's \s must be a subset of str.isspace
        # (whitespace_clean runs first, so the C code only ever meets U+0020). Characters in no
        # class at all (U+0345: a case variant of a letter, so IGNORECASE keeps it out of the
        # negated class, yet not a letter itself) are skipped by findall, like spaces.
        for cp in range(MAXCP):
            if is_surrogate(cp):
                continue
            c = chr(cp)
            p = RX_P.match(c) is not None
            s = RX_S.match(c) is not None
            assert p + s + is_letter(cp) + is_number(cp) <= 1, hex(cp)
            assert not s or c.isspace(), hex(cp)
            if not (p or s or is_letter(cp) or is_number(cp)):
                skip.append((cp, cp))
    runs, multi = lower_runs()
    ign = ranges_of(case_ignorable)
    cas = ranges_of(lambda cp: not case_ignorable(cp) and cased(cp))
    ccc, decomp, comp = build_nfc()
    check_nfc(ccc, decomp, comp)
    ccc_ranges = []
    for cp in sorted(ccc):
        if ccc_ranges and ccc_ranges[-1][1] == cp - 1 and ccc_ranges[-1][2] == ccc[cp]:
            ccc_ranges[-1][1] = cp
        else:
            ccc_ranges.append([cp, cp, ccc[cp]])
    ents = html_entities()
    wmap = width_map()
    c1 = c1_map()
    charrefs = sorted(html._invalid_charrefs.items())
    badcps = sorted(html._invalid_codepoints)

    hdr = ("/* Generated by scripts/gen_unicode_tables.py from Python %s (unicodedata %s); character "
           "classes from\n * %s. Do not edit: rerun the script. */\n"
           % (sys.version.split()[0], unicodedata.unidata_version, CLASS_SOURCE))
    with open(OUT_H, "w") as f:
        f.write(hdr)
        f.write("""/* src/model/unicode_tables.h: the Unicode data of the CLIP tokenizer (see the generator's
 * docstring for where each table comes from). Range tables are sorted and inclusive. */
#ifndef SDC_MODEL_UNICODE_TABLES_H
#define SDC_MODEL_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_uc_range { uint32_t lo, hi; } sdc_uc_range;
typedef struct sdc_uc_lower_run { uint32_t start; uint16_t count, stride; int32_t delta; } sdc_uc_lower_run;
typedef struct sdc_uc_special_lower { uint32_t cp, to[3]; } sdc_uc_special_lower;
typedef struct sdc_uc_ccc { uint32_t lo, hi; uint8_t ccc; } sdc_uc_ccc;
typedef struct sdc_uc_decomp { uint32_t cp, a, b; } sdc_uc_decomp;      /* b == 0: singleton */
typedef struct sdc_uc_comp { uint32_t a, b, cp; } sdc_uc_comp;          /* sorted by (a, b) */
typedef struct sdc_uc_entity { const char *name, *utf8; } sdc_uc_entity; /* sorted by name (bytes) */
typedef struct sdc_uc_width { uint32_t cp, to[2]; } sdc_uc_width;       /* to[1] == 0: one cp */
typedef struct sdc_uc_charref { uint32_t num, to; } sdc_uc_charref;

extern const sdc_uc_range sdc_uc_letter[], sdc_uc_number[], sdc_uc_space[];
extern const size_t sdc_uc_letter_count, sdc_uc_number_count, sdc_uc_space_count;
extern const sdc_uc_range sdc_uc_decimal[];
extern const size_t sdc_uc_decimal_count;
extern const sdc_uc_range sdc_uc_regex_skip[];
extern const size_t sdc_uc_regex_skip_count;
extern const sdc_uc_range sdc_uc_cased[], sdc_uc_case_ignorable[];
extern const size_t sdc_uc_cased_count, sdc_uc_case_ignorable_count;
extern const sdc_uc_lower_run sdc_uc_lower[];
extern const size_t sdc_uc_lower_count;
extern const sdc_uc_special_lower sdc_uc_lower_special[];
extern const size_t sdc_uc_lower_special_count;
extern const sdc_uc_ccc sdc_uc_ccc_table[];
extern const size_t sdc_uc_ccc_table_count;
extern const sdc_uc_decomp sdc_uc_decomp_table[];
extern const size_t sdc_uc_decomp_table_count;
extern const sdc_uc_comp sdc_uc_comp_table[];
extern const size_t sdc_uc_comp_table_count;
extern const sdc_uc_entity sdc_uc_entities[];
extern const size_t sdc_uc_entities_count;
extern const sdc_uc_width sdc_uc_width_table[];
extern const size_t sdc_uc_width_table_count;
extern const uint16_t sdc_uc_c1_cp1252[32];            /* U+0080..U+009F as windows-1252 */
extern const sdc_uc_charref sdc_uc_html_charrefs[];    /* html._invalid_charrefs */
extern const size_t sdc_uc_html_charrefs_count;
extern const uint32_t sdc_uc_html_bad_cps[];           /* html._invalid_codepoints, sorted */
extern const size_t sdc_uc_html_bad_cps_count;

#endif
""")
    with open(OUT_C, "w") as f:
        f.write(hdr)
        f.write('#include "model/unicode_tables.h"\n\n')
        emit_ranges(f, "sdc_uc_letter", letter, "[\\p{L}] of the pre-token regex (IGNORECASE)")
        emit_ranges(f, "sdc_uc_number", number, "[\\p{N}] of the pre-token regex (IGNORECASE)")
        emit_ranges(f, "sdc_uc_space", space, "\\s of the regex module (str.isspace() less U+001C..U+001F)")
        emit_ranges(f, "sdc_uc_decimal", decimal, "str.isdecimal() (\\d of Python's re)")
        emit_ranges(f, "sdc_uc_regex_skip", skip or [(0xFFFFFFFF, 0xFFFFFFFF)],
                    "in no class of the pre-token regex: findall skips them")
        emit_ranges(f, "sdc_uc_cased", cas, "Cased and not Case_Ignorable (CPython's final sigma)")
        emit_ranges(f, "sdc_uc_case_ignorable", ign, "Case_Ignorable (CPython's final sigma)")
        f.write("/* str.lower() of one character: %d runs (start, count, stride, delta) */\n" % len(runs))
        f.write("const sdc_uc_lower_run sdc_uc_lower[] = {\n")
        for i in range(0, len(runs), 4):
            f.write("    " + " ".join("{0x%X, %d, %d, %d}," % r for r in runs[i:i + 4]) + "\n")
        f.write("};\nconst size_t sdc_uc_lower_count = %d;\n\n" % len(runs))
        f.write("/* str.lower() results longer than one character */\n")
        f.write("const sdc_uc_special_lower sdc_uc_lower_special[] = {\n")
        for cp, to in multi:
            assert len(to) <= 3
            to = to + [0] * (3 - len(to))
            f.write("    {0x%X, {0x%X, 0x%X, 0x%X}},\n" % (cp, to[0], to[1], to[2]))
        f.write("};\nconst size_t sdc_uc_lower_special_count = %d;\n\n" % len(multi))
        f.write("/* canonical combining class (non-zero only): %d ranges */\n" % len(ccc_ranges))
        f.write("const sdc_uc_ccc sdc_uc_ccc_table[] = {\n")
        for i in range(0, len(ccc_ranges), 5):
            f.write("    " + " ".join("{0x%X, 0x%X, %d}," % tuple(r) for r in ccc_ranges[i:i + 5]) + "\n")
        f.write("};\nconst size_t sdc_uc_ccc_table_count = %d;\n\n" % len(ccc_ranges))
        items = sorted(decomp.items())
        f.write("/* canonical decompositions, one level (Hangul syllables are algorithmic) */\n")
        f.write("const sdc_uc_decomp sdc_uc_decomp_table[] = {\n")
        for i in range(0, len(items), 5):
            f.write("    " + " ".join("{0x%X, 0x%X, 0x%X}," % (cp, d[0], d[1] if len(d) > 1 else 0)
                                      for cp, d in items[i:i + 5]) + "\n")
        f.write("};\nconst size_t sdc_uc_decomp_table_count = %d;\n\n" % len(items))
        citems = sorted(comp.items())
        f.write("/* primary composites: (first, second) -> composed */\n")
        f.write("const sdc_uc_comp sdc_uc_comp_table[] = {\n")
        for i in range(0, len(citems), 5):
            f.write("    " + " ".join("{0x%X, 0x%X, 0x%X}," % (k[0], k[1], v) for k, v in citems[i:i + 5]) + "\n")
        f.write("};\nconst size_t sdc_uc_comp_table_count = %d;\n\n" % len(citems))
        f.write("/* HTML entities that ftfy 6.1.1 unescapes: name between '&' and ';' -> UTF-8 */\n")
        f.write("const sdc_uc_entity sdc_uc_entities[] = {\n")
        for i in range(0, len(ents), 3):
            f.write("    " + " ".join("{%s, %s}," % (c_str(n), c_str(v)) for n, v in ents[i:i + 3]) + "\n")
        f.write("};\nconst size_t sdc_uc_entities_count = %d;\n\n" % len(ents))
        f.write("/* ftfy fix_character_width: U+3000 and NFKC of U+FF01..U+FFEF */\n")
        f.write("const sdc_uc_width sdc_uc_width_table[] = {\n")
        for i in range(0, len(wmap), 5):
            f.write("    " + " ".join("{0x%X, {0x%X, 0x%X}}," % (cp, to[0], to[1] if len(to) > 1 else 0)
                                      for cp, to in wmap[i:i + 5]) + "\n")
        f.write("};\nconst size_t sdc_uc_width_table_count = %d;\n\n" % len(wmap))
        f.write("const uint16_t sdc_uc_c1_cp1252[32] = {\n")
        for i in range(0, 32, 8):
            f.write("    " + " ".join("0x%04X," % x for x in c1[i:i + 8]) + "\n")
        f.write("};\n\n")
        f.write("const sdc_uc_charref sdc_uc_html_charrefs[] = {\n")
        for i in range(0, len(charrefs), 6):
            f.write("    " + " ".join("{0x%X, 0x%X}," % (k, ord(v)) for k, v in charrefs[i:i + 6]) + "\n")
        f.write("};\nconst size_t sdc_uc_html_charrefs_count = %d;\n\n" % len(charrefs))
        f.write("const uint32_t sdc_uc_html_bad_cps[] = {\n")
        for i in range(0, len(badcps), 8):
            f.write("    " + " ".join("0x%X," % x for x in badcps[i:i + 8]) + "\n")
        f.write("};\nconst size_t sdc_uc_html_bad_cps_count = %d;\n" % len(badcps))
    print("wrote", OUT_C, "and", OUT_H, file=sys.stderr)


if __name__ == "__main__":
    main()
