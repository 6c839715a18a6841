/*
 * host/serve.h — `flowturbo serve`: one process keeps the models loaded and
 * serves, over HTTP (libmicrohttpd, 127.0.0.1 by default):
 *   GET  /                 the live demo page (serve_page.html)
 *   GET  /api/stream?...   server-sent events: one JPEG frame per event with
 *                          its parameters and measured timings
 *   POST /api/generate     JSON request -> PNG, or JSON with base64 PNGs
 *   GET  /api/models, /api/classes, /api/health
 *
 * Threads: libmicrohttpd runs a thread per connection (bounded); engine
 * workers (one per context, contexts share the weights) take API requests
 * from a bounded queue, batching queued requests with the same sampler and
 * guidance into one model batch, and make stream frames in between. One
 * mutex guards the queue and the streams.
 */
#ifndef HOST_SERVE_H
#define HOST_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "../engine/flowturbo.h"

#define SERVE_MAX_IMAGES 16      /* images per API request */
#define SERVE_MAX_BATCH 64       /* --max-batch at most (a request alone may reach SERVE_MAX_IMAGES) */
#define SERVE_MAX_BODY 65536     /* bytes of a request body */
#define SERVE_NAME_MAX 64

typedef struct {
    const char *host;
    int port;
    int queue;       /* API requests waiting at most */
    int max_batch;   /* images per model batch */
    int max_streams; /* live streams at most */
    int max_connections;
    int workers;     /* engine contexts */
    int verbose;
} serve_options;

/* A validated generation request (API or one stream frame). */
typedef struct {
    int n;
    int labels[SERVE_MAX_IMAGES];
    uint64_t seed;                /* image k: seed + k */
    char sampler[32];             /* canonical */
    float cfg_scale;
    int json;                     /* respond with JSON + base64 PNGs (else one PNG) */
} serve_params;

typedef struct serve_request {
    serve_params p;
    /* state and results (under the server mutex) */
    int taken;                    /* a worker runs it */
    int done;
    ft_status status;
    char error[512];
    uint8_t *rgb;                 /* n images, RGB */
    double t_queued, t_started, t_finished;
    int batch_requests, batch_images; /* the model batch it ran in */
    struct serve_request *next;
} serve_request;

/* One live stream (server-sent events). */
typedef struct serve_stream {
    struct serve_state *state;
    int refs;                     /* the stream list + the HTTP response */
    int closed;                   /* the client went away */
    int busy;                     /* a worker is making its frame */
    /* parameters */
    int cls;                      /* class, or -1: cycle through the classes */
    char sampler[32];
    float cfg_scale;
    uint64_t seed;
    int walk, walk_frames;        /* walk: frames per seed/class segment */
    /* frame state */
    uint64_t frame_no;
    char *event;                  /* the pending SSE event, not fully sent yet (NULL: none) */
    size_t event_len, event_sent, event_cap;
    double t_ready;               /* when the pending event was published */
    double last_send_ms;
    double fps_t0;                /* frames-per-second window */
    int fps_frames;
    double fps;
    float *noise_a, *noise_b;     /* walk: noise of the segment's two seeds */
    int64_t noise_segment;        /* the segment noise_a/b belong to (-1: none) */
    struct serve_stream *next;
} serve_stream;

typedef struct serve_state serve_state;

/* One engine worker: its context's progress callback stamps the end of sampling here. */
typedef struct {
    serve_state *s;
    int idx;
    pthread_t thread;
    int started;
    double t_sampled;
} serve_worker;

struct serve_state {
    serve_options opt;
    ft_context **ctx;             /* opt.workers contexts sharing one model set */
    serve_worker *w;              /* [opt.workers]; w[i].progress of ctx[i] */
    /* model facts */
    int num_classes, image_size, channels, latent_channels, latent_size;
    const char *class_names[1024]; /* the model's names, or the ids as text */
    char class_ids[1024][12]; /* "%d" of any int: no truncation warning from gcc */
    const char *model_name, *refiner_name, *vae_name;
    const char *default_sampler; /* of requests without one: FT_DEFAULT_SAMPLER for the embedded model, as in
                                  * `flowturbo generate`; else H1P5R3 with a refiner, H1P5 without */
    /* state, under mu */
    pthread_mutex_t mu;
    pthread_cond_t work;          /* workers: a request or a stream wants work */
    pthread_cond_t done;          /* requests finished / stream frames ready */
    serve_request *q_head, *q_tail;
    int q_len;
    serve_stream *streams;
    int n_streams, rr;
    int quit;
    uint64_t requests_ok, requests_failed, batches, batched_requests, frames;
    double t_start;
};

/* The progress callback of the workers' contexts (user: the serve_worker). */
int serve_progress(ft_phase phase, int step, int total, void *user);

/* serve_engine.c: the workers. */
int serve_workers_start(serve_state *s);
void serve_workers_stop(serve_state *s);
/* Queues a request and waits for it; 0, or -1 when the queue is full (nothing queued). */
int serve_submit_and_wait(serve_state *s, serve_request *r);
/* Adds a stream (one reference for the caller's response); NULL when the limit is reached or out of memory. */
serve_stream *serve_stream_open(serve_state *s, const serve_stream *params);
/* The client is gone / the response is freed: drops the caller's reference. */
void serve_stream_close(serve_state *s, serve_stream *st);

/* serve_api.c: requests and JSON. */
typedef struct {
    int status;                   /* HTTP status of the error */
    char field[64];               /* the field that was wrong ("" for the body as a whole) */
    char msg[448];
} serve_error;

/* Parses and checks a POST /api/generate body; 0, or -1 with e filled. */
int serve_parse_generate(const serve_state *s, const char *body, size_t len, serve_params *p, serve_error *e);
/* Parses and checks the query arguments of /api/stream (get(name) returns the value or NULL). */
int serve_parse_stream(const serve_state *s, const char *(*get)(void *user, const char *name), void *user,
                       serve_stream *p, serve_error *e);
/* Class id from an id or a (case-insensitive) name; -1 if neither. */
int serve_class_lookup(const serve_state *s, const char *text);
/* Malloc'd JSON documents. */
char *serve_json_error(const serve_error *e);
char *serve_json_models(const serve_state *s);
char *serve_json_classes(const serve_state *s);
char *serve_json_health(serve_state *s);
/* The JSON answer of a finished request (base64 PNGs); NULL when out of memory or encoding failed. */
char *serve_json_result(const serve_state *s, const serve_request *r);
/* The PNG answer (one image, or a grid of n); NULL on failure. */
uint8_t *serve_png_result(const serve_state *s, const serve_request *r, size_t *size);

/* serve_http.c: the HTTP server. */
int serve_http_run(serve_state *s);

/* Growable string (JSON building). */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} sbuf;
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_json_string(sbuf *b, const char *s);
void sb_base64(sbuf *b, const uint8_t *data, size_t n);
/* The buffer (caller frees), or NULL when an allocation failed. */
char *sb_take(sbuf *b);

#endif
