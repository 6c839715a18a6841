#!/usr/bin/env bash
# A full disk (a small tmpfs, so root is needed): a run that cannot fit is refused before sampling with the space
# it needs; a disk that fills up while a run writes makes it fail cleanly (exit 1, "No space left"), never crash
# or leave a torn archive, and once space is freed the same command resumes to the archive an unfilled disk gives.
#   bash tests/reliability/full_disk.sh
cd "$(dirname "$0")/../.." && . tests/reliability/lib.sh
[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
MNT=$WORK/mnt
mkdir -p "$MNT"
mount -t tmpfs -o size=1m tmpfs "$MNT" 2> "$WORK/mount.err" || skip "cannot mount a tmpfs: $(cat "$WORK/mount.err")"
trap 'umount "$MNT" 2>/dev/null; rm -rf "$WORK"' EXIT
echo "reliability/$NAME: a 1 MiB tmpfs at $MNT"
RUN=(sample-fid -m "$FASHION" --sampler heun:1 --batch 4 --seed 9 -t 1)

try "a run of 2000 images (12 MiB of archive and spool) on the 1 MiB disk"
"$CLI" "${RUN[@]}" --num 2000 --out "$MNT/big.npz" > "$WORK/big.log" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "needs .* of free disk space" "$WORK/big.log" && ! grep -q "sampling images" "$WORK/big.log"; then
    held "refused before sampling: $(grep -o 'needs .*' "$WORK/big.log" | head -1)"
else
    broke "exit $rc: $(tail -1 "$WORK/big.log")"
fi
rm -rf "$MNT"/big.npz*

N=60 # 180 KiB of images, spool + archive 370 KiB: fits the disk, then a filler takes the rest
"$CLI" "${RUN[@]}" --num $N --out "$WORK/ref.npz" > /dev/null 2>&1 || broke "reference run failed"
for trial in 1 2 3; do
    out=$MNT/run$trial.npz
    try "trial $trial: $N images while a filler file takes the free space after $((trial * 150)) ms"
    "$CLI" "${RUN[@]}" --num $N --out "$out" > "$WORK/fill.log" 2>&1 &
    pid=$!
    sleep "0.$((trial * 150))"
    dd if=/dev/zero of="$MNT/filler" bs=4k 2> /dev/null
    wait $pid
    rc=$?
    if [ $rc = 0 ]; then
        held "trial $trial: the run finished before the disk was full (exit 0)"
    elif [ $rc = 1 ] && grep -q "No space left on device\|needs .* of free disk space" "$WORK/fill.log"; then
        held "trial $trial: failed cleanly with exit 1: $(tail -1 "$WORK/fill.log" | sed 's|/tmp/[^ ]*/mnt/|MNT/|g')"
        [ -e "$out" ] && broke "trial $trial: a partial $out was left behind"
    else
        broke "trial $trial: exit $rc: $(tail -2 "$WORK/fill.log" | tr '\n' ' ')"
    fi
    rm -f "$MNT/filler"
    "$CLI" "${RUN[@]}" --num $N --out "$out" > "$WORK/resume.log" 2>&1
    rc=$?
    if [ $rc = 0 ] && cmp -s "$WORK/ref.npz" "$out"; then
        held "trial $trial: with space freed the same command finished; the archive equals the reference"
    else
        broke "trial $trial: resume exit $rc or the archive differs: $(tail -1 "$WORK/resume.log")"
    fi
    rm -rf "$out" "$out.spool"
done
finish
