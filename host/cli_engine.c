/* host/cli_engine.c — see cli_engine.h. */
#include "cli_engine.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C ends the process at once */
}

void interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int interrupt_requested(void) { return g_interrupted != 0; }

void engine_opts_init(engine_opts *eo) {
    memset(eo, 0, sizeof *eo);
    /* FLOWTURBO_BACKEND sets the default (the test runner pins the CLI to the CPU reference with it) */
    const char *env = getenv("FLOWTURBO_BACKEND");
    eo->backend = env && *env ? env : "auto";
    eo->dtype = "bf16";
}

int engine_opts_check(const cli_spec *spec, engine_opts *eo) {
    static const char *gpu_only[] = {"dtype", "device", "no-graphs"};
    eo->gpu_flags[0] = 0;
    for (int i = 0; i < 3; i++)
        if (cli_seen(spec, gpu_only[i])) {
            size_t n = strlen(eo->gpu_flags);
            snprintf(eo->gpu_flags + n, sizeof eo->gpu_flags - n, "%s--%s", n ? ", " : "", gpu_only[i]);
        }
    if (strcmp(eo->backend, "auto") && strcmp(eo->backend, "cpu") && strcmp(eo->backend, "cuda"))
        return cli_usage_error(spec, "option '--backend' (or FLOWTURBO_BACKEND) must be cpu, cuda or auto, got '%s'",
                               eo->backend);
    if (strcmp(eo->dtype, "bf16") && strcmp(eo->dtype, "f16") && strcmp(eo->dtype, "f32"))
        return cli_usage_error(spec, "option '--dtype' must be bf16, f16 or f32, got '%s'", eo->dtype);
    if (eo->device < 0) return cli_usage_error(spec, "option '--device' must be >= 0, got %d", eo->device);
    if (eo->threads < 0 || eo->threads > FT_MAX_THREADS)
        return cli_usage_error(spec, "option '--threads' must be in 0..%d (0: all cores), got %d", FT_MAX_THREADS,
                               eo->threads);
    return 0;
}

int cfg_scale_check(const cli_spec *spec, float cfg_scale) {
    if (cfg_scale > FT_MAX_CFG_SCALE || cfg_scale < -FT_MAX_CFG_SCALE)
        return cli_usage_error(spec, "option '--cfg-scale' must be in [-%g, %g], got %g", (double)FT_MAX_CFG_SCALE,
                               (double)FT_MAX_CFG_SCALE, (double)cfg_scale);
    return 0;
}

static void on_log(ft_log_level level, const char *message, void *user) {
    engine_session *s = user;
    if (level == FT_LOG_DEBUG && !s->verbose) return;
    if (level == FT_LOG_ERROR && !s->verbose) return; /* the command prints ft_last_error itself */
    if (level == FT_LOG_INFO && s->quiet) return;
    static const char *tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    pbar_break(&s->bar);
    fprintf(stderr, "[%s] %s\n", tags[level <= FT_LOG_ERROR ? level : FT_LOG_ERROR], message);
}

static int on_progress(ft_phase phase, int step, int total, void *user) {
    engine_session *s = user;
    char label[64];
    double now = now_seconds();
    switch (phase) {
    case FT_PHASE_LOADING:
        pbar_update(&s->bar, s->stage ? s->stage : "loading", step, total, "it", NULL);
        break;
    case FT_PHASE_SAMPLING:
        s->saw_sampling = 1;
        if (step >= total) {
            s->sampling_s += now - s->t_batch;
            s->t_sampled = now;
        }
        if (s->steps_bar) {
            int batches = s->gen_batch > 0 ? (s->gen_total + s->gen_batch - 1) / s->gen_batch : 1;
            int b = s->gen_batch > 0 ? s->gen_done / s->gen_batch + 1 : 1;
            if (batches > 1) snprintf(label, sizeof label, "sampling %d/%d", b, batches);
            else snprintf(label, sizeof label, "sampling");
            pbar_update(&s->bar, label, step, total, "it", NULL);
        }
        break;
    case FT_PHASE_DECODING:
        if (s->steps_bar) pbar_update(&s->bar, "decoding", step, total, "img", NULL);
        break;
    case FT_PHASE_BATCH:
        if (s->saw_sampling) s->decode_s += now - s->t_sampled;
        else s->sampling_s += now - s->t_batch;
        s->saw_sampling = 0;
        s->gen_done = step;
        s->t_batch = now;
        pbar_mark(&s->bar, 0);
        if (s->on_batch) s->on_batch(s->on_batch_user, step, total);
        break;
    }
    return interrupt_requested();
}

int engine_start(engine_session *s, const char *cmd, const engine_opts *eo) {
    memset(s, 0, sizeof *s);
    s->cmd = cmd;
    s->verbose = eo->verbose;
    s->quiet = eo->quiet;
    pbar_init(&s->bar, !eo->quiet);
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.backend = strcmp(eo->backend, "cpu") == 0 ? FT_BACKEND_CPU
                 : strcmp(eo->backend, "cuda") == 0 ? FT_BACKEND_CUDA
                                                    : FT_BACKEND_AUTO;
    cp.device = eo->device;
    cp.n_threads = eo->threads;
    cp.compute_dtype = strcmp(eo->dtype, "f32") == 0 ? FT_DTYPE_F32 : strcmp(eo->dtype, "f16") == 0 ? FT_DTYPE_F16
                                                                                                     : FT_DTYPE_BF16;
    cp.use_graphs = !eo->no_graphs;
    cp.log_cb = on_log;
    cp.log_user = s;
    cp.progress_cb = on_progress;
    cp.progress_user = s;
    s->ctx = ft_context_new(&cp);
    if (!s->ctx) return cli_error(cmd, "out of memory creating the engine context");
    if (strcmp(ft_backend_name(s->ctx), "none") == 0) {
        int rc = cli_error(cmd, "%s", ft_last_error(s->ctx));
        engine_stop(s);
        return rc;
    }
    if (eo->gpu_flags[0] && strcmp(ft_backend_name(s->ctx), "cpu") == 0)
        cli_warn("%s: changes nothing on the cpu backend (one CPU device, f32 arithmetic, no CUDA graphs)",
                 eo->gpu_flags);
    return 0;
}

int engine_load(engine_session *s, ft_role role, const char *path, const char *flag) {
    char label[96];
    snprintf(label, sizeof label, "loading %s", flag + 2);
    s->stage = label;
    double t0 = now_seconds();
    pbar_mark(&s->bar, 0);
    ft_status st = ft_load(s->ctx, role, path);
    pbar_break(&s->bar);
    s->stage = NULL;
    if (st == FT_ERR_CANCELLED && interrupt_requested()) {
        fprintf(stderr, "flowturbo %s: interrupted while loading %s %s\n", s->cmd, flag, path);
        return EXIT_INTERRUPTED;
    }
    if (st != FT_OK) return cli_error(s->cmd, "cannot load %s %s: %s", flag, path, ft_last_error(s->ctx));
    char what[300];
    snprintf(what, sizeof what, "loading %s %s", flag, path);
    if (!s->quiet) print_timing(what, now_seconds() - t0);
    return 0;
}

int engine_load_default(engine_session *s, ft_role role, const char **name_out) {
    double t0 = now_seconds();
    size_t size;
    const char *name;
    const void *data = ft_default_model(role, &size, &name);
    ft_status st = ft_load_memory(s->ctx, role, data, size, name);
    *name_out = name;
    if (st != FT_OK) return cli_error(s->cmd, "cannot load %s: %s", name, ft_last_error(s->ctx));
    char what[300];
    snprintf(what, sizeof what, "loading %s", name);
    print_timing(what, now_seconds() - t0);
    return 0;
}

const char *refiner_if_used(const char *refiner, const ft_sampler_info *sc) {
    if (!refiner || sc->refiner_blocks > 0) return refiner;
    cli_warn("--refiner %s changes nothing: sampler %s has no refiner (R) blocks", refiner, sc->name);
    return NULL;
}

ft_status engine_generate(engine_session *s, const ft_generate_params *gp, float *latents, uint8_t *images) {
    s->gen_total = gp->num_images;
    s->gen_batch = gp->batch_size > 0 ? gp->batch_size : gp->num_images;
    s->gen_done = 0;
    s->saw_sampling = 0;
    s->t_batch = now_seconds();
    pbar_mark(&s->bar, 0);
    ft_status st = ft_generate(s->ctx, gp, latents, images);
    pbar_break(&s->bar);
    return st;
}

void engine_stop(engine_session *s) {
    pbar_break(&s->bar);
    ft_context_free(s->ctx);
    s->ctx = NULL;
}
