# tests/reliability/lib.sh — sourced by the fault scripts (run from the repository root). Each check prints what it
# tried and what held; the last line is "reliability/<name>: PASS|FAIL|SKIP (...)", and the exit status is 1 only
# on FAIL.
CLI=${FT_CLI:-build/flowturbo}
NAME=$(basename "$0" .sh)
FAILS=0
CHECKS=0
try() { echo "  try:  $*"; }
held() { echo "  held: $*"; CHECKS=$((CHECKS + 1)); }
broke() { echo "  FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { # check "what held" command...: held when the command succeeds
    local what=$1
    shift
    if "$@"; then held "$what"; else broke "$what"; fi
}
skip() {
    echo "reliability/$NAME: SKIP ($*)"
    exit 0
}
finish() {
    if [ "$FAILS" = 0 ]; then
        echo "reliability/$NAME: PASS ($CHECKS checks)"
    else
        echo "reliability/$NAME: FAIL ($FAILS of $((CHECKS + FAILS)) checks)"
        exit 1
    fi
}
WORK=$(mktemp -d /tmp/flowturbo-reliability-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
[ -x "$CLI" ] || { echo "reliability/$NAME: FAIL ($CLI is not built: make)"; exit 1; }
# the 32x32 Fashion-MNIST SiT: big enough that sampling takes a while, small enough for CI
FASHION=host/models/fashion_sit.safetensors
