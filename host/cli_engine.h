/*
 * host/cli_engine.h — what the generate / decode / sample-fid commands share
 * about the engine: the backend options, the context with its log and
 * progress callbacks, model loading with clear messages, stage timing, and
 * Ctrl-C (the first one cancels the running call cleanly, a second one
 * kills the process).
 */
#ifndef HOST_CLI_ENGINE_H
#define HOST_CLI_ENGINE_H

#include "../engine/flowturbo.h"
#include "cli_options.h"
#include "progress.h"

typedef struct {
    int threads;
    const char *backend; /* "auto", "cpu", "cuda" */
    int device;
    const char *dtype;   /* "bf16", "f16", "f32" */
    int no_graphs;
    int verbose;
    char gpu_flags[48]; /* "--dtype, --no-graphs": GPU-only flags given (set by engine_opts_check) */
    int quiet;           /* not an option: only warnings and errors (the other ranks of a multi-process run) */
} engine_opts;

void engine_opts_init(engine_opts *eo);

/* The engine rows of a command's option table. */
#define ENGINE_OPTIONS(eo)                                                                                      \
    {'t', "threads", OPT_INT, &(eo).threads, "N", "CPU threads (default: all cores)", 0, 0},                   \
    {0, "backend", OPT_STR, &(eo).backend, "NAME", "cpu, cuda or auto (default auto: cuda when a GPU is usable)", 0, 0}, \
    {0, "device", OPT_INT, &(eo).device, "N", "CUDA device ordinal (default 0)", 0, 0},                       \
    {0, "dtype", OPT_STR, &(eo).dtype, "TYPE", "GPU transformer GEMM type: bf16, f16 or f32 (default bf16; VAE: f16)", 0, 0}, \
    {0, "no-graphs", OPT_FLAG, &(eo).no_graphs, NULL, "CUDA: do not capture sampler trajectories as CUDA graphs", 0, 0}, \
    {'v', "verbose", OPT_FLAG, &(eo).verbose, NULL, "print the engine's debug messages", 0, 0}

/* Checks the option values (--threads at most FT_MAX_THREADS, ...); returns 0 or prints a usage error and
 * returns 2. */
int engine_opts_check(const cli_spec *spec, engine_opts *eo);
/* --cfg-scale within the library's bound (FT_MAX_CFG_SCALE); 0 or a usage error and 2. */
int cfg_scale_check(const cli_spec *spec, float cfg_scale);

typedef struct {
    const char *cmd;      /* for messages */
    ft_context *ctx;
    int verbose, quiet;
    progress_bar bar;
    const char *stage;    /* label of the loading bar */
    /* ft_generate bookkeeping (engine_generate) */
    int steps_bar;        /* draw a bar per sampling batch */
    int gen_total, gen_batch, gen_done;
    double t_batch, t_sampled, sampling_s, decode_s;
    int saw_sampling;
    /* called after each finished batch of ft_generate (may be NULL) */
    void (*on_batch)(void *user, int done, int total);
    void *on_batch_user;
} engine_session;

/* Creates the context (warning about GPU-only flags on the cpu backend); 0, or 1 with the message printed. */
int engine_start(engine_session *s, const char *cmd, const engine_opts *eo);
/* Loads a model; flag names the option ("--model") in messages. 0, 1, or EXIT_INTERRUPTED (130) when Ctrl-C /
 * SIGTERM stopped the loading. */
int engine_load(engine_session *s, ft_role role, const char *path, const char *flag);
/* Loads the library's embedded model of a role (ft_default_model); *name gets its name. 0 or 1. */
int engine_load_default(engine_session *s, ft_role role, const char **name);
/* The refiner file when the sampler uses it; NULL, with a warning that it changes nothing, otherwise. */
const char *refiner_if_used(const char *refiner, const ft_sampler_info *sc);
/* ft_generate with sampling / decode timing in s->sampling_s / s->decode_s. */
ft_status engine_generate(engine_session *s, const ft_generate_params *gp, float *latents, uint8_t *images);
void engine_stop(engine_session *s);

/* Ctrl-C handling. */
void interrupt_install(void);
int interrupt_requested(void);

#endif
