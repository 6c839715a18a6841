/* tests/test_fid_launch.c — sample-fid with several processes, with the
 * Fashion-MNIST model of host/models (the one embedded in the CLI): under
 * mpirun (3 ranks, oversubscribed) and with torchrun / Slurm variables
 * (3 background processes), each archive compared byte for byte with a
 * one-process run; a rank killed midway, then the command rerun; refusals;
 * the launcher detection and the shard concatenation in-process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../host/fid_npz.h"
#include "../host/fid_world.h"
#include "test.h"

/* 13 images in batches of 3: the shards [0,4) [4,8) [8,13) start inside batches */
#define LAUNCH_ARGS                                                                                             \
    "sample-fid -m host/models/fashion_sit.safetensors --refiner host/models/fashion_refiner.safetensors "     \
    "--backend cpu -t 1 --sampler H2P1R1 --num 13 --batch 3 --seed 5"
#define MPIRUN "mpirun --allow-run-as-root --oversubscribe"

static char out[65536];
#define tmp(name) test_tmp_path("launch_", name)

static int same_bytes(const char *a, const char *b) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return test_run(cmd) == 0;
}

static int count_of(const char *text, const char *what) {
    int n = 0;
    for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) n++;
    return n;
}

/* Runs a shell command with stdout + stderr in out; its exit status. */
static int run_logged(const char *cmd) {
    char full[8192], log[600];
    snprintf(log, sizeof log, "%s/launch_log.txt", test_tmpdir());
    snprintf(full, sizeof full, "( %s ) >%s 2>&1", cmd, log);
    int rc = test_run(full);
    out[0] = 0;
    FILE *f = fopen(log, "rb");
    if (f) {
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = 0;
        fclose(f);
    }
    return rc;
}

/* The one-process reference archive (made once). */
static const char *single_run(void) {
    static int done;
    if (!done) {
        if (test_cli_run(out, sizeof out, LAUNCH_ARGS " --launcher none --out %s", tmp("single.npz")) != 0) {
            test_note("reference run failed: %s", out);
            return NULL;
        }
        done = 1;
    }
    return tmp("single.npz");
}

/* NULL when mpirun with an MPI-built CLI can run here, else why not. */
static const char *mpi_missing(void) {
    static char why[200];
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s sample-fid --help | grep -q 'MPI: built in'", test_cli());
    if (test_run(cmd) != 0) {
        snprintf(why, sizeof why, "%s was built without MPI (install libopenmpi-dev, then make)", test_cli());
        return why;
    }
    if (test_run("command -v mpirun >/dev/null 2>&1") != 0) return "mpirun is not installed (openmpi-bin)";
    return NULL;
}

/* CI sets FT_REQUIRE_MPI=1 where it installs Open MPI: there a missing MPI is a failure, not a skip. */
static int require_mpi(void) {
    const char *v = getenv("FT_REQUIRE_MPI");
    return v && strcmp(v, "1") == 0;
}

/* Starts 3 background processes with a launcher's variables (extra_1: more options for rank 1) and waits;
 * out gets each one's exit status line, then their logs. */
static int run_env3(const char *rank_var, const char *size_var, const char *local_var, const char *npz,
                    const char *extra_1) {
    char cmd[8192];
    size_t n = 0;
    for (int r = 0; r < 3; r++)
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s=%d %s=3 %s=%d %s " LAUNCH_ARGS " %s --out %s >%s/env_%d.log 2>&1 & "
                              "p%d=$!; ", rank_var, r, size_var, local_var, r, test_cli(), r == 1 ? extra_1 : "",
                              npz, test_tmpdir(), r, r);
    snprintf(cmd + n, sizeof cmd - n,
             "fail=0; for r in 0 1 2; do eval wait \\$p$r; s=$?; echo \"rank $r exit $s\"; [ $s = 0 ] || fail=1; done; "
             "cat %s/env_0.log %s/env_1.log %s/env_2.log; exit $fail", test_tmpdir(), test_tmpdir(), test_tmpdir());
    return run_logged(cmd);
}

TEST(fid_launch_mpirun_matches_single) {
    const char *why = mpi_missing();
    CHECK(!why || !require_mpi(), "FT_REQUIRE_MPI=1 but %s", why);
    if (why) SKIP_BECAUSE("%s", why);
    const char *ref = single_run();
    CHECK(ref, "no reference run");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, MPIRUN " -np 3 %s " LAUNCH_ARGS " --out %s", test_cli(), tmp("mpi.npz"));
    CHECK(run_logged(cmd) == 0, "mpirun -np 3 failed: %s", out);
    CHECK(same_bytes(ref, tmp("mpi.npz")), "the 3-rank archive differs from the one-process run");
    CHECK(strstr(out, "3 processes (mpi: rank 0 of 3)"), "rank 0 did not report the world: %s", out);
    /* progress once, by rank 0, over all images, with a rate; the other ranks print no INFO */
    CHECK(count_of(out, "| 13/13 - ") == 1 && strstr(out, "img/s"),
          "expected one aggregate progress line 13/13 with a rate: %s", out);
    CHECK(count_of(out, "loaded predictor") == 1 && count_of(out, "wrote ") == 1, "other ranks were not quiet: %s",
          out);
    CHECK(!test_file_exists(tmp("mpi.npz.spool/shard-1-of-3/images.raw")), "spool images left after the merge");
    return PASS;
}

TEST(fid_launch_mpirun_killed_rank_resumes) {
    const char *why = mpi_missing();
    CHECK(!why || !require_mpi(), "FT_REQUIRE_MPI=1 but %s", why);
    if (why) SKIP_BECAUSE("%s", why);
    const char *ref = single_run();
    CHECK(ref, "no reference run");
    const char *npz = tmp("mpik.npz");
    char cmd[4096], state[600];
    /* rank 1 is killed (SIGKILL) after its first batch; mpirun then stops the others */
    snprintf(cmd, sizeof cmd, MPIRUN " -np 1 %s " LAUNCH_ARGS " --out %s : -np 1 %s " LAUNCH_ARGS
             " --out %s --stop-after 2 : -np 1 %s " LAUNCH_ARGS " --out %s", test_cli(), npz, test_cli(), npz,
             test_cli(), npz);
    CHECK(run_logged(cmd) != 0, "the killed rank did not fail the job: %s", out);
    snprintf(state, sizeof state, "%s.spool/shard-1-of-3/state", npz);
    CHECK(!test_file_exists(npz) && test_file_exists(state), "after the kill: archive %d, shard 1 state %d: %s",
          test_file_exists(npz), test_file_exists(state), out);
    snprintf(cmd, sizeof cmd, "grep -q '^count 2$' %s", state);
    CHECK(test_run(cmd) == 0, "shard 1 should hold the 2 images committed before the kill");
    /* the same command again: every shard resumes, rank 0 merges */
    snprintf(cmd, sizeof cmd, MPIRUN " -np 3 %s " LAUNCH_ARGS " --out %s", test_cli(), npz);
    CHECK(run_logged(cmd) == 0, "rerun failed: %s", out);
    CHECK(strstr(out, "resuming"), "the rerun did not resume: %s", out);
    CHECK(same_bytes(ref, npz), "the resumed 3-rank archive differs from the one-process run");
    CHECK(run_logged(cmd) == 0 && strstr(out, "already complete"), "a finished run run again: %s", out);
    return PASS;
}

TEST(fid_launch_env_three_processes) {
    const char *ref = single_run();
    CHECK(ref, "no reference run");
    int rc = run_env3("RANK", "WORLD_SIZE", "LOCAL_RANK", tmp("env.npz"), "");
    CHECK(rc == 0, "torchrun-style processes failed: %s", out);
    CHECK(same_bytes(ref, tmp("env.npz")), "the 3-process archive differs from the one-process run");
    CHECK(count_of(out, "merging 3 shards") == 1 && count_of(out, "wrote ") == 1, "exactly one process must merge: %s",
          out);
    return PASS;
}

TEST(fid_launch_env_killed_rank_resumes) {
    const char *ref = single_run();
    CHECK(ref, "no reference run");
    const char *npz = tmp("slurm.npz");
    int rc = run_env3("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", npz, "--stop-after 2");
    CHECK(rc != 0 && strstr(out, "rank 0 exit 0") && strstr(out, "rank 2 exit 0") && !strstr(out, "rank 1 exit 0"),
          "expected ranks 0 and 2 to finish and rank 1 to be killed: %s", out);
    CHECK(!test_file_exists(npz) && !strstr(out, "merging"), "merged without shard 1: %s", out);
    /* the same three processes again: shard 1 resumes; whoever finishes last merges */
    rc = run_env3("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", npz, "");
    CHECK(rc == 0, "rerun failed: %s", out);
    CHECK(count_of(out, "wrote ") == 1, "exactly one process must merge: %s", out);
    CHECK(same_bytes(ref, npz), "the resumed archive differs from the one-process run");
    return PASS;
}

/* Runs "ENV flowturbo LAUNCH_ARGS MORE" into out; its exit status. */
static int run_env_cli(const char *env, const char *more) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s " LAUNCH_ARGS " %s", env, test_cli(), more);
    return run_logged(cmd);
}

TEST(fid_launch_refusals) {
    const char *ref = single_run();
    CHECK(ref, "no reference run");
    char more[1024];
    snprintf(more, sizeof more, "--out %s", tmp("x.npz"));
    int rc = run_env_cli("RANK=0 WORLD_SIZE=2", "--shard 0/2 --out x.npz");
    CHECK(rc == 2 && strstr(out, "both choose the shard"), "--shard with a launcher: rc %d: %s", rc, out);
    rc = run_env_cli("RANK=3 WORLD_SIZE=2", more);
    CHECK(rc == 2 && strstr(out, "RANK='3'"), "rank out of range: rc %d: %s", rc, out);
    rc = run_env_cli("RANK=0 WORLD_SIZE=14", more);
    CHECK(rc == 2 && strstr(out, "14 processes for 13 images"), "more processes than images: rc %d: %s", rc, out);
    rc = run_env_cli("", "--launcher slurm --out x.npz");
    CHECK(rc == 2 && strstr(out, "SLURM_NTASKS is not set"), "--launcher slurm outside Slurm: rc %d: %s", rc, out);
    const char *npz = tmp("slurm.npz"); /* a finished 3-process run (fid_launch_env_killed_rank_resumes) */
    if (test_file_exists(npz)) {
        snprintf(more, sizeof more, "--out %s", npz);
        rc = run_env_cli("RANK=0 WORLD_SIZE=2", more);
        CHECK(rc == 1 && strstr(out, "3-process run but this run has 2"), "2 processes on a 3-process spool: %s", out);
        rc = run_env_cli("", more);
        CHECK(rc == 1 && strstr(out, "multi-process run"), "one process on a 3-process spool: %s", out);
    }
    snprintf(more, sizeof more, "--out %s", ref);
    rc = run_env_cli("RANK=1 WORLD_SIZE=3", more);
    CHECK(rc == 1 && strstr(out, "single-process run"), "3 processes on a one-process spool: %s", out);
    return PASS;
}

static void unset_launcher_env(void) {
    static const char *const vars[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS",
                                       "SLURM_LOCALID", "CUDA_VISIBLE_DEVICES"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

TEST(fid_launch_world_from_environment) {
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK")) SKIP_BECAUSE("the test runner itself runs under MPI");
    const char *saved[3] = {getenv("RANK"), getenv("SLURM_PROCID"), getenv("CUDA_VISIBLE_DEVICES")};
    if (saved[0] || saved[1] || saved[2]) SKIP_BECAUSE("launcher variables are set in the test's environment");
    fid_world w;
    hx_err err;
    CHECK(fid_world_detect(&w, "auto", &err) == 0 && w.size == 1 && strcmp(w.launcher, "none") == 0, "no launcher");
    setenv("SLURM_PROCID", "2", 1);
    setenv("SLURM_NTASKS", "4", 1);
    setenv("SLURM_LOCALID", "1", 1);
    int ok = fid_world_detect(&w, "auto", &err) == 0 && strcmp(w.launcher, "slurm") == 0 && w.rank == 2 &&
             w.size == 4 && w.local_rank == 1 && fid_world_device(&w) == 1;
    setenv("CUDA_VISIBLE_DEVICES", "3", 1); /* srun --gpus-per-task=1: each task sees its GPU as device 0 */
    ok = ok && fid_world_device(&w) == 0;
    setenv("CUDA_VISIBLE_DEVICES", "0,1", 1);
    ok = ok && fid_world_device(&w) == 1;
    /* torchrun-style variables win over the Slurm job's */
    setenv("RANK", "0", 1);
    setenv("WORLD_SIZE", "2", 1);
    ok = ok && fid_world_detect(&w, "auto", &err) == 0 && strcmp(w.launcher, "torchrun") == 0 && w.size == 2 &&
         w.local_rank == -1 && fid_world_device(&w) == 0;
    ok = ok && fid_world_detect(&w, "slurm", &err) == 0 && w.rank == 2;
    ok = ok && fid_world_detect(&w, "none", &err) == 0 && w.size == 1;
    setenv("WORLD_SIZE", "x", 1);
    int bad_size = fid_world_detect(&w, "torchrun", &err) != 0 && strstr(err.msg, "WORLD_SIZE='x'");
    int bad_name = fid_world_detect(&w, "pbs", &err) != 0 && strstr(err.msg, "--launcher");
    unset_launcher_env();
    CHECK(ok, "launcher detection from the environment");
    CHECK(bad_size && bad_name, "bad values must be refused: %s", err.msg);
    return PASS;
}

typedef struct {
    int calls[3];
} parts_seen;

/* Part p's image k is the byte 10 * p + k. */
static int read_numbered(void *user, int part, uint64_t first, size_t n, uint8_t *buf, hx_err *err) {
    (void)err;
    ((parts_seen *)user)->calls[part]++;
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(10 * part + (int)(first + i));
    return 0;
}

TEST(fid_launch_concat_read_spans_parts) {
    const uint64_t start[4] = {0, 3, 3, 7}; /* part 1 is empty */
    uint8_t buf[7];
    parts_seen seen = {{0, 0, 0}};
    hx_err err;
    CHECK(fid_concat_read(start, 3, read_numbered, &seen, 2, 5, buf, 1, &err) == 0, "%s", err.msg);
    const uint8_t want[5] = {2, 20, 21, 22, 23};
    CHECK(memcmp(buf, want, 5) == 0 && seen.calls[1] == 0, "images 2..6 across an empty part");
    CHECK(fid_concat_read(start, 3, read_numbered, &seen, 6, 2, buf, 1, &err) != 0, "reading past the end");
    return PASS;
}
