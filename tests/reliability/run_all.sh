#!/usr/bin/env bash
# Runs every fault script in tests/reliability and prints a table of what each tried and what held; fails when any
# check failed (a skipped script, e.g. full_disk.sh without root, says why and does not fail).
#   bash tests/reliability/run_all.sh
cd "$(dirname "$0")/../.."
fail=0
summary=()
for s in kill_resume full_disk threads tsan leaks; do
    t0=$(date +%s)
    bash "tests/reliability/$s.sh" | tee "/tmp/flowturbo-reliability-$s.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || fail=1
    summary+=("$(printf '%-12s %4ss  %s' "$s" $(($(date +%s) - t0)) "$(tail -1 "/tmp/flowturbo-reliability-$s.log" | sed 's/^reliability\/[a-z_]*: //')")")
    rm -f "/tmp/flowturbo-reliability-$s.log"
done
echo
echo "fault tests:"
printf '  %s\n' "${summary[@]}"
exit $fail
