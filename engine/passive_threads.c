/* engine/passive_threads.c — ft_reexec_with_passive_threads: start the OpenMP
 * runtime with passive waiting (libgomp reads OMP_WAIT_POLICY only when it is
 * loaded, before main, so a program that wants it must be started with it). */
#include <stdlib.h>
#include <unistd.h>

#include "flowturbo.h"

void ft_reexec_with_passive_threads(char **argv) {
    if (!argv || !argv[0] || getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY"); /* exec failed: carry on as before */
}
