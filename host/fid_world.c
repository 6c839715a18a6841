/* host/fid_world.c — see fid_world.h. */
#include "fid_world.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_options.h"
#include "fid_mpi.h"

typedef struct {
    const char *name, *rank, *size, *local;
} env_launcher;

/* in the order auto tries them: torchrun may run inside a Slurm job step */
static const env_launcher ENV_LAUNCHERS[] = {
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
};
#define N_ENV_LAUNCHERS (int)(sizeof ENV_LAUNCHERS / sizeof ENV_LAUNCHERS[0])

static int env_int(const char *var, long long lo, long long hi, long long *out, hx_err *err) {
    const char *v = getenv(var);
    if (!v) return hx_fail(err, "%s is not set", var);
    if (parse_int_strict(v, lo, hi, out) != 0)
        return hx_fail(err, "%s='%s': expected a whole number in %lld..%lld", var, v, lo, hi);
    return 0;
}

static int from_env(fid_world *w, const env_launcher *l, hx_err *err) {
    long long size, rank, local = -1;
    if (env_int(l->size, 1, 1 << 24, &size, err) != 0 || env_int(l->rank, 0, size - 1, &rank, err) != 0) return -1;
    if (getenv(l->local) && env_int(l->local, 0, 1 << 24, &local, err) != 0) return -1;
    w->launcher = l->name;
    w->rank = (int)rank;
    w->size = (int)size;
    w->local_rank = (int)local;
    snprintf(w->source, sizeof w->source, "%s: %s=%lld, %s=%lld", l->name, l->rank, rank, l->size, size);
    return 0;
}

static int from_mpi(fid_world *w, hx_err *err) {
    if (!fid_mpi_built())
        return hx_fail(err, "--launcher mpi: this flowturbo was built without MPI (install libopenmpi-dev and "
                       "rebuild: make MPI=1)");
    if (fid_mpi_init(&w->rank, &w->size, &w->local_rank, err) != 0) return -1;
    w->mpi = 1;
    w->launcher = "mpi";
    snprintf(w->source, sizeof w->source, "mpi: rank %d of %d", w->rank, w->size);
    return 0;
}

int fid_world_detect(fid_world *w, const char *launcher, hx_err *err) {
    memset(w, 0, sizeof *w);
    w->launcher = "none";
    w->size = 1;
    w->local_rank = -1;
    if (strcmp(launcher, "none") == 0) return 0;
    if (strcmp(launcher, "mpi") == 0) return from_mpi(w, err);
    for (int i = 0; i < N_ENV_LAUNCHERS; i++)
        if (strcmp(launcher, ENV_LAUNCHERS[i].name) == 0) return from_env(w, &ENV_LAUNCHERS[i], err);
    if (strcmp(launcher, "auto") != 0)
        return hx_fail(err, "option '--launcher' must be auto, mpi, torchrun, slurm or none, got '%s'", launcher);
    const char *mpi_var = fid_mpi_launcher_var();
    if (mpi_var && fid_mpi_built()) return from_mpi(w, err);
    const char *ompi_size = getenv("OMPI_COMM_WORLD_SIZE");
    if (ompi_size && strcmp(ompi_size, "1") != 0) /* N copies would each take the whole run */
        return hx_fail(err, "started by mpirun (OMPI_COMM_WORLD_SIZE=%s) but this flowturbo was built without MPI: "
                       "install libopenmpi-dev and rebuild (make MPI=1), or start it with srun or torchrun-style "
                       "variables", ompi_size);
    for (int i = 0; i < N_ENV_LAUNCHERS; i++)
        if (getenv(ENV_LAUNCHERS[i].rank) && getenv(ENV_LAUNCHERS[i].size)) return from_env(w, &ENV_LAUNCHERS[i], err);
    return 0;
}

int fid_world_device(const fid_world *w) {
    if (w->local_rank < 0) return 0;
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    int n = 0;
    if (visible && *visible) {
        n = 1;
        for (const char *p = visible; *p; p++) n += *p == ',';
    }
    return n > 0 ? w->local_rank % n : w->local_rank;
}

void fid_world_end(fid_world *w) {
    if (w->mpi) fid_mpi_finalize();
    w->mpi = 0;
}
