/* host/cmd_serve.c — `flowturbo serve`: loads the models once and serves the
 * live demo page and the JSON API over HTTP (serve.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_engine.h"
#include "cli_options.h"
#include "commands.h"
#include "progress.h"
#include "serve.h"

typedef struct {
    const char *model, *refiner, *vae;
    serve_options so;
    engine_opts eo;
} serve_args;

/* The first worker loads the models; the others share them (ft_context_new_shared). */
static int load_models(serve_state *s, engine_session *es, const serve_args *a) {
    int embedded = !a->model;
    const char *name;
    if (embedded) {
        if (engine_load_default(es, FT_ROLE_PREDICTOR, &name) != 0) return 1;
        if (!a->refiner && engine_load_default(es, FT_ROLE_REFINER, &name) != 0) return 1;
    } else if (engine_load(es, FT_ROLE_PREDICTOR, a->model, "--model") != 0) {
        return 1;
    }
    if (a->refiner && engine_load(es, FT_ROLE_REFINER, a->refiner, "--refiner") != 0) return 1;
    if (a->vae && engine_load(es, FT_ROLE_VAE, a->vae, "--vae") != 0) return 1;
    s->model_name = embedded ? FT_DEFAULT_PREDICTOR_NAME : a->model;
    s->refiner_name = a->refiner ? a->refiner : embedded ? FT_DEFAULT_REFINER_NAME : NULL;
    s->vae_name = a->vae;
    s->default_sampler = embedded ? FT_DEFAULT_SAMPLER : s->refiner_name ? "H1P5R3" : "H1P5";
    ft_output_shape sh;
    ft_model_info mi;
    if (ft_get_output_shape(es->ctx, &sh) != FT_OK || !sh.can_make_images)
        return cli_error("serve", "%s makes %d-channel latents: serving images needs its VAE (--vae FILE)",
                         s->model_name, sh.latent_channels);
    ft_model_get_info(es->ctx, FT_ROLE_PREDICTOR, &mi);
    ft_model_info vi;
    ft_model_get_info(es->ctx, FT_ROLE_VAE, &vi);
    s->num_classes = mi.num_classes < 1024 ? mi.num_classes : 1024;
    s->image_size = sh.image_size;
    s->latent_channels = sh.latent_channels;
    s->latent_size = sh.latent_size;
    s->channels = vi.loaded ? 3 : sh.latent_channels == 1 ? 1 : 3;
    for (int c = 0; c < s->num_classes; c++) {
        snprintf(s->class_ids[c], sizeof s->class_ids[c], "%d", c);
        s->class_names[c] = ft_class_name(es->ctx, c) ? ft_class_name(es->ctx, c) : s->class_ids[c];
    }
    return 0;
}

int cmd_serve(int argc, char **argv) {
    serve_args a;
    memset(&a, 0, sizeof a);
    a.so.host = "127.0.0.1";
    a.so.port = 8080;
    a.so.queue = 32;
    a.so.max_batch = 8;
    a.so.max_streams = 4;
    a.so.max_connections = 64;
    a.so.workers = 1;
    engine_opts_init(&a.eo);
    cli_opt opts[] = {
        {'m', "model", OPT_STR, &a.model, "FILE", "velocity predictor weights (default: the embedded Fashion-MNIST\n"
                                                  "SiT + refiner)", 0, 0},
        {0, "refiner", OPT_STR, &a.refiner, "FILE", "velocity refiner weights (samplers with R blocks need it)", 0, 0},
        {0, "vae", OPT_STR, &a.vae, "FILE", "SD-VAE decoder weights (latent models need it)", 0, 0},
        {0, "host", OPT_STR, &a.so.host, "ADDR", "IPv4 address to listen on (default 127.0.0.1: this machine only)", 0, 0},
        {'p', "port", OPT_INT, &a.so.port, "N", "TCP port (default 8080; 0: any free port, printed)", 0, 0},
        {0, "queue", OPT_INT, &a.so.queue, "N", "API requests waiting at most; more get 503 (default 32)", 0, 0},
        {0, "max-batch", OPT_INT, &a.so.max_batch, "N", "images per model batch when requests are batched (default 8,\n"
                                                       "at most 64)", 0, 0},
        {0, "max-streams", OPT_INT, &a.so.max_streams, "N", "live demo streams at most (default 4)", 0, 0},
        {0, "max-connections", OPT_INT, &a.so.max_connections, "N", "open HTTP connections at most (default 64)", 0, 0},
        {0, "workers", OPT_INT, &a.so.workers, "N", "engine contexts sharing the weights, each generating in\n"
                                                   "parallel (default 1; on CPU each uses -t threads)", 0, 0},
        ENGINE_OPTIONS(a.eo),
    };
    cli_spec spec = {"serve", "flowturbo serve [-m MODEL --refiner FILE --vae FILE] [--port N] [options]",
                     "Keeps the models loaded and serves a live demo page (a continuous stream of generated\n"
                     "frames with class, sampler, guidance, seed and walk controls) and a JSON HTTP API:\n"
                     "  POST /api/generate   {\"class\": \"Sneaker\", \"seed\": 1, \"sampler\": \"H1P5R3\",\n"
                     "                        \"cfg_scale\": 4, \"num_images\": 1, \"format\": \"png\" | \"json\"}\n"
                     "  GET  /api/models, /api/classes, /api/health, /api/stream?class=..&sampler=..",
                     "Examples:\n"
                     "  flowturbo serve                       # embedded model, http://127.0.0.1:8080/\n"
                     "  flowturbo serve -m sit-xl-2.safetensors --refiner refiner.safetensors --vae vae.safetensors\n"
                     "  curl -s -d '{\"class\":\"Bag\",\"seed\":3}' http://127.0.0.1:8080/api/generate -o bag.png",
                     opts, (int)(sizeof opts / sizeof opts[0]), 0};
    char *pos[1];
    int npos;
    int pr = cli_parse(&spec, argc, argv, pos, &npos);
    if (pr != CLI_OK) return pr == CLI_HELP ? 0 : EXIT_USAGE;
    if (!a.model && a.vae) return cli_usage_error(&spec, "--vae needs -m/--model (the embedded model works in pixels)");
    if (engine_opts_check(&spec, &a.eo)) return EXIT_USAGE;
    if (a.so.port < 0 || a.so.port > 65535) return cli_usage_error(&spec, "option '--port' must be 0..65535, got %d", a.so.port);
    if (a.so.queue < 1 || a.so.queue > 4096)
        return cli_usage_error(&spec, "option '--queue' must be 1..4096, got %d", a.so.queue);
    if (a.so.max_batch < 1 || a.so.max_batch > SERVE_MAX_BATCH)
        return cli_usage_error(&spec, "option '--max-batch' must be 1..%d, got %d", SERVE_MAX_BATCH, a.so.max_batch);
    if (a.so.max_streams < 0 || a.so.max_streams > 256)
        return cli_usage_error(&spec, "option '--max-streams' must be 0..256, got %d", a.so.max_streams);
    if (a.so.max_connections < 1 || a.so.max_connections > 4096)
        return cli_usage_error(&spec, "option '--max-connections' must be 1..4096, got %d", a.so.max_connections);
    if (a.so.workers < 1 || a.so.workers > 64)
        return cli_usage_error(&spec, "option '--workers' must be 1..64, got %d", a.so.workers);
    a.so.verbose = a.eo.verbose;

    static serve_state s;
    memset(&s, 0, sizeof s);
    s.opt = a.so;
    s.t_start = now_seconds();
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.work, NULL);
    pthread_cond_init(&s.done, NULL);
    s.ctx = calloc((size_t)a.so.workers, sizeof *s.ctx);
    s.w = calloc((size_t)a.so.workers, sizeof *s.w);
    int rc = 1;
    engine_session es;
    interrupt_install();
    if (!s.ctx || !s.w) {
        free(s.ctx);
        free(s.w);
        return cli_error("serve", "out of memory");
    }
    if (engine_start(&es, "serve", &a.eo) != 0) goto out_free;
    if (load_models(&s, &es, &a) != 0) goto out;
    /* the workers' contexts: the same backend settings, progress into their serve_worker, the loaded weights */
    for (int i = 0; i < a.so.workers; i++) {
        ft_context_params cp;
        ft_context_params_init(&cp);
        cp.n_threads = a.eo.threads;
        cp.use_graphs = !a.eo.no_graphs;
        cp.progress_cb = serve_progress;
        cp.progress_user = &s.w[i];
        s.w[i].s = &s;
        s.w[i].idx = i;
        s.ctx[i] = ft_context_new_shared(&cp, es.ctx);
        if (!s.ctx[i] || strcmp(ft_backend_name(s.ctx[i]), "none") == 0) {
            cli_error("serve", "cannot create engine context %d: %s", i, s.ctx[i] ? ft_last_error(s.ctx[i]) : "out of memory");
            goto out;
        }
    }
    fprintf(stderr, "[INFO ] %s on %s, %d worker%s, %d classes, %dx%d images\n", s.model_name,
            ft_backend_name(s.ctx[0]), a.so.workers, a.so.workers == 1 ? "" : "s", s.num_classes, s.image_size,
            s.image_size);
    if (serve_workers_start(&s) != 0) cli_error("serve", "cannot start the engine workers");
    else rc = serve_http_run(&s) == 0 ? 0 : 1;
    serve_workers_stop(&s);
out:
    for (int i = 0; i < a.so.workers; i++) ft_context_free(s.ctx[i]);
    engine_stop(&es);
out_free:
    free(s.ctx);
    free(s.w);
    return rc;
}
