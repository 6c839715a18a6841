/*
 * host/fid_world.h — which process of a multi-process sample-fid this is:
 * from MPI (mpirun), or from the environment of a launcher without MPI
 * (Slurm's srun: SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID; torchrun and
 * friends: RANK / WORLD_SIZE / LOCAL_RANK).
 *
 * --launcher auto (default) picks, in order: MPI when this build has it and
 * an MPI launcher started the process; torchrun's variables; Slurm's. A
 * world of one process is a plain run.
 */
#ifndef HOST_FID_WORLD_H
#define HOST_FID_WORLD_H

#include "errmsg.h"

typedef struct {
    const char *launcher; /* "mpi", "torchrun", "slurm" or "none" */
    int mpi;              /* MPI is initialised (fid_world_end finalises it) */
    int rank, size;
    int local_rank;       /* among the processes on this node; -1 when unknown */
    char source[192];     /* where rank and size came from, for messages */
} fid_world;

/* launcher: "auto", "mpi", "torchrun", "slurm" or "none". 0, or -1 with the
 * reason in err (an unknown launcher, a missing or malformed variable, MPI
 * asked for but not built in). */
int fid_world_detect(fid_world *w, const char *launcher, hx_err *err);
/* The CUDA device of this process when --device is not given: the local
 * rank, modulo the number of devices in CUDA_VISIBLE_DEVICES when that is
 * set (a launcher that binds one GPU per task leaves each task device 0). */
int fid_world_device(const fid_world *w);
void fid_world_end(fid_world *w);

#endif
