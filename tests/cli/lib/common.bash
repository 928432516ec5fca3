# tests/cli/lib/common.bash: the preamble and helpers every tests/cli/*.sh script shares.
# (Not a *.sh file: CMakeLists.txt adds every tests/cli/*.sh as a test.)
#
# A script sources it first thing, with its own arguments still in place:
#
#   . "$(dirname "$0")/lib/common.bash"     # from: bash tests/cli/NAME.sh SDC_EXE SHARED_DIR TMPDIR
#
# which sets -u and
#   SDC     the sdc command ($1)            SHARED  the shared data directory ($2)
#   T       a fresh, empty temporary directory ($3, removed and created again)
#   ROOT    the repository root             TINY    the shared tiny SD1.5 checkpoint
#   passed, failed  the counters that pass / fail keep and finish reports.
# Helpers (all of them count one pass or one fail; none of them exits):
#   pass; fail MESSAGE...                 count a check (fail prints "FAIL: MESSAGE" on stderr)
#   ok DESCRIPTION CMD...                 CMD exits 0; its stdout and stderr stay in $T/out.txt
#                                         and $T/err.txt, stderr is shown when it fails
#   expect_refusal [-n NEEDLE] [-f FILE] [-s] [-C DIR] [--] DESCRIPTION CMD...
#                                         CMD exits 1 with exactly one line on stderr (printed
#                                         when it passes); -n: the line contains NEEDLE (a fixed
#                                         string); -f: FILE does not exist afterwards; -s: stdout
#                                         is empty; -C: CMD runs in DIR (in a subshell)
#   same DESCRIPTION GOT WANT             two strings are equal
#   same_file DESCRIPTION FILE1 FILE2     two files have the same bytes
#   expect_grep DESCRIPTION ERE FILE      an extended regex matches a line of FILE
#   need_node MODULE...                   the ONNX Runtime part of a test: without node, says it is
#                                         skipped, removes $T and finishes; with node but without
#                                         one of the npm MODULEs, fails and finishes
#   finish                                prints "NAME.sh: P passed, F failed" and exits,
#                                         with status 0 only when nothing failed
set -u
if [ $# -lt 3 ]; then
    echo "usage: bash $0 SDC_EXE SHARED_DIR TMPDIR" >&2
    exit 2
fi
SDC=$1
SHARED=$2
T=$3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
TINY=$SHARED/testdata/tiny/sd15-tiny-f32.safetensors
rm -rf "$T"
mkdir -p "$T"

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

ok() {
    local what=$1
    shift
    if "$@" >"$T/out.txt" 2>"$T/err.txt"; then pass; else fail "$what: exit $?"; cat "$T/err.txt" >&2; fi
}

expect_refusal() {
    local needle='' nofile='' quiet=0 dir=''
    while [ $# -gt 0 ]; do
        case $1 in
            -n) needle=$2; shift 2 ;;
            -f) nofile=$2; shift 2 ;;
            -s) quiet=1; shift ;;
            -C) dir=$2; shift 2 ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    local what=$1
    shift
    if [ -n "$dir" ]; then (cd "$dir" && "$@"); else "$@"; fi >"$T/out.txt" 2>"$T/err.txt"
    local rc=$? lines why=''
    lines=$(wc -l <"$T/err.txt")
    [ $rc -eq 1 ] || why="$why, exit $rc, want 1 (>128 means a crash)"
    [ "$lines" -eq 1 ] || why="$why, $lines lines on stderr, want 1"
    if [ -n "$nofile" ] && [ -e "$nofile" ]; then why="$why, output file $nofile exists"; fi
    if [ $quiet -eq 1 ] && [ -s "$T/out.txt" ]; then why="$why, output on stdout"; fi
    if [ -n "$needle" ] && ! grep -qF -- "$needle" "$T/err.txt"; then why="$why, message lacks '$needle'"; fi
    if [ -n "$why" ]; then
        fail "$what:${why#,}"
        sed 's/^/  stderr: /' "$T/err.txt" >&2
    else
        pass
        echo "  $what: $(cat "$T/err.txt")"
    fi
}

same() { if [ "$2" = "$3" ]; then pass; else fail "$1: got '$2', want '$3'"; fi; }

same_file() { if cmp -s "$2" "$3"; then pass; else fail "$1: $2 and $3 differ"; fi; }

expect_grep() {
    if grep -qE -- "$2" "$3"; then pass; else fail "$1: no line matching '$2' in $3"; cat "$3" >&2; fi
}

need_node() {
    if ! command -v node >/dev/null 2>&1; then
        echo "$(basename "$0" .sh): node not found: the ONNX Runtime comparisons are skipped (scripts/setup.sh installs node)"
        rm -rf "$T"
        finish
    fi
    local m req=''
    for m in "$@"; do req="$req require('$m');"; done
    if ! (cd "$ROOT" && node -e "$req" 2>/dev/null); then
        local names=$*
        fail "${names// / or } is not installed: run scripts/setup.sh (npm install into $ROOT/node_modules)"
        finish
    fi
}

finish() {
    echo "$(basename "$0"): $passed passed, $failed failed"
    [ "$failed" -eq 0 ] && exit 0
    exit 1
}
