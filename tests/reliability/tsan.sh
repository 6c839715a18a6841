#!/usr/bin/env bash
# Concurrent contexts under ThreadSanitizer: the library built with clang -fsanitize=thread and LLVM's OpenMP
# runtime (libomp), whose archer tool tells TSan about OpenMP's barriers and tasks (GCC's libgomp is not
# instrumented: TSan reports its synchronisation as races). Three contexts with two threads each generate at
# once; TSan must report nothing and every context must equal a single context's output. Accesses made inside
# modules that are not instrumented (libomp itself, OpenBLAS, which runs single-threaded per GEMM tile) are
# ignored (ignore_noninstrumented_modules, as archer asks); a race planted in gemm.c's tile loop was reported.
#   bash tests/reliability/tsan.sh
cd "$(dirname "$0")/../.." && . tests/reliability/lib.sh
command -v clang > /dev/null || skip "clang is not installed (apt-get install clang libomp-dev)"
ARCHER=$(ls /usr/lib/llvm-*/lib/libarcher.so 2> /dev/null | tail -1)
[ -n "$ARCHER" ] || skip "LLVM's archer OpenMP tool is missing (apt-get install libomp-dev)"
try "build the library and tests/reliability/contexts.c with clang -fsanitize=thread -fopenmp (libomp)"
make -s BUILD=build/tsan CC=clang CFLAGS="-g -O1 -fsanitize=thread" LDLIBS_TSAN=1 CUDA=0 build/tsan/reliability_contexts \
    > "$WORK/build.log" 2>&1 || { broke "build failed: $(tail -3 "$WORK/build.log")"; finish; }
held "built build/tsan/reliability_contexts"
try "3 concurrent contexts x 2 OpenMP threads, 8 images each, under TSan with archer ($ARCHER)"
OMP_TOOL_LIBRARIES=$ARCHER TSAN_OPTIONS="halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1" \
    ARCHER_OPTIONS="verbose=1" build/tsan/reliability_contexts 3 8 > "$WORK/tsan.log" 2>&1
rc=$?
grep -q "Archer detected OpenMP application with TSan" "$WORK/tsan.log" &&
    held "archer was active (OpenMP synchronisation visible to TSan)" || broke "archer did not load: $(head -2 "$WORK/tsan.log")"
if [ $rc = 0 ] && ! grep -q "WARNING: ThreadSanitizer" "$WORK/tsan.log"; then
    held "no data race reported; $(grep -c identical "$WORK/tsan.log") of 3 contexts identical to one context"
else
    broke "exit $rc: $(grep -m3 -E 'WARNING: ThreadSanitizer|DIFFERS|#[0-1] ' "$WORK/tsan.log" | tr '\n' ' ')"
    grep -A20 "WARNING: ThreadSanitizer" "$WORK/tsan.log" | head -30 | sed 's/^/        /'
fi
finish
