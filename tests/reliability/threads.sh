#!/usr/bin/env bash
# Output bytes independent of the CPU thread count: generate (PNGs and latents) and sample-fid archives at -t 1,
# 2, 3 and 4, and a sample-fid run killed at one thread count and resumed at another.
#   bash tests/reliability/threads.sh
cd "$(dirname "$0")/../.." && . tests/reliability/lib.sh
echo "reliability/$NAME: the embedded Fashion-MNIST model (batch 8 with guidance: 1024-row GEMMs)"
for t in 1 2 3 4; do
    "$CLI" generate -t $t -n 8 --sampler H1P2R1 --grid -o "$WORK/g$t.png" --latents-out "$WORK/g$t.npy" > /dev/null 2>&1 ||
        broke "generate -t $t failed"
    "$CLI" sample-fid -m "$FASHION" -t $t --sampler heun:2 --num 8 --batch 4 --seed 2 --out "$WORK/f$t.npz" \
        > /dev/null 2>&1 || broke "sample-fid -t $t failed"
done
try "generate -t 1, 2, 3, 4: grid PNG and latents"
check "the PNGs and the latents of -t 2, 3 and 4 equal -t 1's byte for byte" \
    bash -c "for t in 2 3 4; do cmp -s $WORK/g1.png $WORK/g\$t.png && cmp -s $WORK/g1.npy $WORK/g\$t.npy || exit 1; done"
try "sample-fid -t 1, 2, 3, 4: archives"
check "the archives of -t 2, 3 and 4 equal -t 1's byte for byte" \
    bash -c "for t in 2 3 4; do cmp -s $WORK/f1.npz $WORK/f\$t.npz || exit 1; done"
try "sample-fid killed (--stop-after 4) at -t 3, resumed at -t 1"
("$CLI" sample-fid -m "$FASHION" -t 3 --sampler heun:2 --num 8 --batch 4 --seed 2 --out "$WORK/r.npz" --stop-after 4
    :) > /dev/null 2>&1 # dies by SIGKILL
"$CLI" sample-fid -m "$FASHION" -t 1 --sampler heun:2 --num 8 --batch 4 --seed 2 --out "$WORK/r.npz" > /dev/null 2>&1
check "the resumed archive equals the uninterrupted ones" cmp -s "$WORK/f1.npz" "$WORK/r.npz"
finish
