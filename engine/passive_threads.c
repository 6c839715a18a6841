/* engine/passive_threads.c — ft_reexec_with_passive_threads: start the OpenMP
 * runtime with passive waiting (libgomp reads OMP_WAIT_POLICY only when it is
 * loaded, before main, so a program that wants it must be started with it),
 * and OpenBLAS without its thread pool: the engine calls it single-threaded,
 * yet a pthread OpenBLAS starts its workers when it is loaded and they
 * busy-wait ~0.1 s before sleeping (measured: 20-30 ms of CPU inside a 150 ms
 * idle window right after a fast first call). */
#include <stdlib.h>
#include <unistd.h>

#include "flowturbo.h"

void ft_reexec_with_passive_threads(char **argv) {
    if (!argv || !argv[0] || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    if (!getenv("OPENBLAS_NUM_THREADS")) setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY"); /* exec failed: carry on as before */
}
