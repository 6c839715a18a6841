/*
 * host/fid_mpi.h — the few MPI calls of `mpirun -np N flowturbo sample-fid`.
 *
 * Compiled against Open MPI when the Makefile finds it (MPI=1 / MPI=0
 * force it on / off); without it fid_mpi_built() is 0 and fid_mpi_init
 * fails with a message saying so. The waits poll non-blocking collectives
 * with short sleeps, so a rank that has finished its shard neither spins a
 * core the others need nor stops rank 0 from reporting progress (tick).
 */
#ifndef HOST_FID_MPI_H
#define HOST_FID_MPI_H

#include "errmsg.h"

/* Called about every half second while a wait is in progress. */
typedef void (*fid_mpi_tick)(void *user);

/* 1 when this flowturbo was built with MPI. */
int fid_mpi_built(void);
/* The environment variable an MPI launcher (mpirun, srun --mpi=pmix) set
 * for this process, or NULL when none is set. */
const char *fid_mpi_launcher_var(void);
/* MPI_Init; the rank and size in MPI_COMM_WORLD and among the processes
 * that share this node (MPI_Comm_split_type). */
int fid_mpi_init(int *rank, int *size, int *local_rank, hx_err *err);
/* Every rank passes its status; every rank gets all of them (all[size]). */
int fid_mpi_gather_status(int mine, int *all, fid_mpi_tick tick, void *user, hx_err *err);
/* Rank 0's *value, sent to every rank. */
int fid_mpi_bcast_int(int *value, fid_mpi_tick tick, void *user, hx_err *err);
void fid_mpi_finalize(void);

#endif
