#!/usr/bin/env bash
# A few hundred calls in one process (contexts, loads from file and memory, generation, decoding, failing calls):
# resident memory must stay flat (a bounded cache, no growth per call), and AddressSanitizer's leak checker must
# find nothing after a shorter run of the same loop.
#   bash tests/reliability/leaks.sh [ITERATIONS]
cd "$(dirname "$0")/../.." && . tests/reliability/lib.sh
IT=${1:-300}
make -s build/reliability_leak_calls > "$WORK/build.log" 2>&1 || { broke "build failed: $(tail -3 "$WORK/build.log")"; finish; }
try "$IT iterations of new context / load / generate / decode / failing calls / free (plain build)"
if build/reliability_leak_calls "$IT" 2048 > "$WORK/rss.log" 2>&1; then
    held "$(cat "$WORK/rss.log")"
else
    broke "$(cat "$WORK/rss.log")"
fi
try "60 iterations under AddressSanitizer + LeakSanitizer (build/asan)"
make -s BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    LDLIBS_EXTRA=1 CUDA=0 build/asan/reliability_leak_calls > "$WORK/build.log" 2>&1 ||
    { broke "ASan build failed: $(tail -3 "$WORK/build.log")"; finish; }
if ASAN_OPTIONS=detect_leaks=1 build/asan/reliability_leak_calls 60 1000000 > "$WORK/asan.log" 2>&1; then
    held "no leak reported by LeakSanitizer"
else
    broke "$(grep -m3 -E 'ERROR|SUMMARY' "$WORK/asan.log" | tr '\n' ' ')"
fi
finish
