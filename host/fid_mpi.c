/* host/fid_mpi.c — see fid_mpi.h. */
#include "fid_mpi.h"

#include <stdlib.h>

#ifdef FT_WITH_MPI
#include <mpi.h>
#include <time.h>

int fid_mpi_built(void) { return 1; }

static int mpi_fail(hx_err *err, const char *what, int code) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len] = 0;
    return hx_fail(err, "%s failed: %s", what, len ? msg : "unknown MPI error");
}

int fid_mpi_init(int *rank, int *size, int *local_rank, hx_err *err) {
    int provided, rc;
    /* only the main thread calls MPI; the engine's OpenMP threads never do */
    if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
        return mpi_fail(err, "MPI_Init_thread", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm node;
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS || (rc = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS)
        return mpi_fail(err, "MPI_Comm_rank/size", rc);
    if ((rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &node)) != MPI_SUCCESS)
        return mpi_fail(err, "MPI_Comm_split_type", rc);
    rc = MPI_Comm_rank(node, local_rank);
    MPI_Comm_free(&node);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "MPI_Comm_rank (node)", rc);
}

/* Completes req, calling tick every half second. */
static int wait_polling(MPI_Request *req, const char *what, fid_mpi_tick tick, void *user, hx_err *err) {
    const struct timespec nap = {0, 20 * 1000 * 1000};
    int done = 0, naps = 0, rc;
    while ((rc = MPI_Test(req, &done, MPI_STATUS_IGNORE)) == MPI_SUCCESS && !done) {
        nanosleep(&nap, NULL);
        if (tick && ++naps % 25 == 0) tick(user);
    }
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, what, rc);
}

int fid_mpi_gather_status(int mine, int *all, fid_mpi_tick tick, void *user, hx_err *err) {
    MPI_Request req;
    int rc = MPI_Iallgather(&mine, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "MPI_Iallgather", rc);
    return wait_polling(&req, "MPI_Iallgather", tick, user, err);
}

int fid_mpi_bcast_int(int *value, fid_mpi_tick tick, void *user, hx_err *err) {
    MPI_Request req;
    int rc = MPI_Ibcast(value, 1, MPI_INT, 0, MPI_COMM_WORLD, &req);
    if (rc != MPI_SUCCESS) return mpi_fail(err, "MPI_Ibcast", rc);
    return wait_polling(&req, "MPI_Ibcast", tick, user, err);
}

void fid_mpi_finalize(void) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Finalize();
}

#else /* built without MPI */

int fid_mpi_built(void) { return 0; }

static int not_built(hx_err *err) {
    return hx_fail(err, "this flowturbo was built without MPI (install libopenmpi-dev and rebuild: make MPI=1)");
}

int fid_mpi_init(int *rank, int *size, int *local_rank, hx_err *err) {
    *rank = *local_rank = 0;
    *size = 1;
    return not_built(err);
}

int fid_mpi_gather_status(int mine, int *all, fid_mpi_tick tick, void *user, hx_err *err) {
    (void)tick;
    (void)user;
    all[0] = mine;
    return not_built(err);
}

int fid_mpi_bcast_int(int *value, fid_mpi_tick tick, void *user, hx_err *err) {
    (void)value;
    (void)tick;
    (void)user;
    return not_built(err);
}

void fid_mpi_finalize(void) {}

#endif

const char *fid_mpi_launcher_var(void) {
    /* Open MPI's mpirun sets the first; PMIx launchers (srun --mpi=pmix, prterun) the second */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return vars[i];
    return NULL;
}
