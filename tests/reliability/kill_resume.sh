#!/usr/bin/env bash
# kill -9 and SIGTERM at random moments of sample-fid runs, resumed until done: every resumed archive must equal
# the uninterrupted one byte for byte, no output may appear before the run is complete, and SIGTERM must end the
# run cleanly (exit 130) at any moment.
#   bash tests/reliability/kill_resume.sh [TRIALS] [SEED]
cd "$(dirname "$0")/../.." && . tests/reliability/lib.sh
TRIALS=${1:-3}
RANDOM=${2:-$$}
echo "reliability/$NAME: $TRIALS kill -9 trials and $TRIALS SIGTERM trials (random seed ${2:-$$})"
RUN=(sample-fid -m "$FASHION" --sampler heun:2 --num 24 --batch 4 --seed 3 -t 1)
"$CLI" "${RUN[@]}" --out "$WORK/ref.npz" > "$WORK/ref.log" 2>&1 || { broke "the reference run failed"; finish; }
t0=$(date +%s%N)
"$CLI" "${RUN[@]}" --out "$WORK/timing.npz" > /dev/null 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
echo "  an uninterrupted run takes ${ms} ms; kills land in [20, $((ms + 100))] ms"
committed() { sed -n 's/^count \([0-9]*\)$/\1/p' "$1.spool/state" 2>/dev/null || echo 0; }
for kind in KILL TERM; do
    for ((t = 1; t <= TRIALS; t++)); do
        out=$WORK/$kind$t.npz
        points=""
        for ((k = 1; k <= 3; k++)); do # up to three interruptions, then a run to the end
            delay=$((20 + RANDOM % (ms + 80)))
            "$CLI" "${RUN[@]}" --out "$out" > "$WORK/run.log" 2>&1 &
            pid=$!
            sleep "$(printf '0.%03d' $((delay % 1000)))"
            [ $delay -ge 1000 ] && sleep $((delay / 1000))
            kill -"$kind" $pid 2> /dev/null
            wait $pid 2> /dev/null
            rc=$?
            points="$points ${delay}ms/rc$rc/$(committed "$out")img"
            # SIGTERM: exit 130 (cancelled cleanly), 0 (it had finished), or 143 while the process was still
            # starting (before the command installed its handler: nothing printed, nothing written)
            if [ $kind = TERM ] && [ $rc != 130 ] && [ $rc != 0 ] && ! { [ $rc = 143 ] && [ ! -s "$WORK/run.log" ]; }; then
                broke "SIGTERM at ${delay} ms ended with exit status $rc (want 130, or 0 when it had finished)"
                sed 's/^/        /' "$WORK/run.log" | tail -3
            fi
            # an archive may exist after a kill only if it was complete (killed after the rename)
            if [ $rc != 0 ] && [ -e "$out" ] && ! cmp -s "$WORK/ref.npz" "$out"; then
                broke "an interrupted run left a torn $out behind"
            fi
            [ $rc = 0 ] && break
        done
        try "$kind trial $t: interrupted at$points, then resumed to the end"
        "$CLI" "${RUN[@]}" --out "$out" > "$WORK/resume.log" 2>&1
        rc=$?
        if [ $rc = 0 ] && cmp -s "$WORK/ref.npz" "$out"; then
            held "$kind trial $t: exit 0 and the archive equals the uninterrupted one byte for byte"
        else
            broke "$kind trial $t: resume exited $rc or the archive differs"
            tail -3 "$WORK/resume.log" | sed 's/^/        /'
        fi
    done
done
finish
