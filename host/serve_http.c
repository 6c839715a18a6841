/* host/serve_http.c — `serve`: the HTTP side (libmicrohttpd, a thread per
 * connection, bounded): routing, request bodies (bounded), JSON / PNG / page
 * answers, and the server-sent-events stream of live frames (serve.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../engine/incbin.h"
#include "cli_engine.h"
#include "progress.h"
#include "serve.h"

FT_INCBIN(serve_page, "host/serve_page.html");

#define KEEPALIVE_S 1 /* an idle stream sends a comment this often (finds clients that went away) */

typedef struct {
    int post;
    char *body;
    size_t len;
    int too_large;
} request_ctx;

/* allow: the Allow header of a 405 (NULL otherwise). */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, void *data, size_t len, const char *type,
                               enum MHD_ResponseMemoryMode mode, const char *allow) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE) MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, char *json, const char *allow) {
    static const char oom[] = "{\"error\":\"out of memory\",\"status\":500}";
    if (!json) return respond(c, 500, (void *)oom, sizeof oom - 1, "application/json", MHD_RESPMEM_PERSISTENT, NULL);
    return respond(c, status, json, strlen(json), "application/json", MHD_RESPMEM_MUST_FREE, allow);
}

/* A JSON error; a 405 names the allowed methods in field's place (and no field). */
static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *field, const char *fmt, ...) {
    serve_error e;
    e.status = status;
    snprintf(e.field, sizeof e.field, "%s", status == 405 ? "" : field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return respond_json(c, (unsigned)status, serve_json_error(&e), status == 405 ? field : NULL);
}

/* ---- the live stream (server-sent events) ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    serve_stream *st = cls;
    serve_state *s = st->state;
    if (pos == 0) { /* opens the stream at once in the browser (EventSource.onopen) */
        static const char hello[] = "retry: 1000\n: flowturbo live frames\n\n";
        size_t n = sizeof hello - 1 < max ? sizeof hello - 1 : max;
        memcpy(buf, hello, n);
        return (ssize_t)n;
    }
    pthread_mutex_lock(&s->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += KEEPALIVE_S;
    while (!s->quit && st->event_len == 0)
        if (pthread_cond_timedwait(&s->done, &s->mu, &until) == ETIMEDOUT) break;
    ssize_t n;
    if (s->quit) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (st->event_len == 0) {
        static const char ka[] = ": keep-alive\n\n";
        n = (ssize_t)(sizeof ka - 1 < max ? sizeof ka - 1 : max);
        memcpy(buf, ka, (size_t)n);
    } else {
        size_t left = st->event_len - st->event_sent;
        n = (ssize_t)(left < max ? left : max);
        memcpy(buf, st->event + st->event_sent, (size_t)n);
        st->event_sent += (size_t)n;
        if (st->event_sent == st->event_len) { /* handed to the socket: the stream wants its next frame */
            st->last_send_ms = (now_seconds() - st->t_ready) * 1e3;
            st->event_len = 0;
            pthread_cond_broadcast(&s->work);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void stream_free(void *cls) {
    serve_stream *st = cls;
    serve_stream_close(st->state, st);
}

static const char *query_arg(void *user, const char *name) {
    return MHD_lookup_connection_value(user, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result open_stream(serve_state *s, struct MHD_Connection *c) {
    serve_stream params;
    serve_error e;
    if (serve_parse_stream(s, query_arg, c, &params, &e) != 0) return respond_json(c, (unsigned)e.status, serve_json_error(&e), NULL);
    params.state = s;
    serve_stream *st = serve_stream_open(s, &params);
    if (!st)
        return respond_error(c, 503, "", "too many live streams (%d at most): close one and retry", s->opt.max_streams);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, st, stream_free);
    if (!r) {
        serve_stream_close(s, st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- POST /api/generate ---- */

static enum MHD_Result generate(serve_state *s, struct MHD_Connection *c, const request_ctx *rc) {
    serve_request *r = calloc(1, sizeof *r);
    if (!r) return respond_error(c, 500, "", "out of memory");
    serve_error e;
    if (serve_parse_generate(s, rc->body ? rc->body : "", rc->len, &r->p, &e) != 0) {
        free(r);
        return respond_json(c, (unsigned)e.status, serve_json_error(&e), NULL);
    }
    if (serve_submit_and_wait(s, r) != 0) {
        free(r);
        return respond_error(c, 503, "", "the request queue is full (%d waiting): retry shortly", s->opt.queue);
    }
    enum MHD_Result ret;
    if (r->status != FT_OK) {
        int code = r->status == FT_ERR_INVALID_ARGUMENT ? 400 : r->status == FT_ERR_CANCELLED ? 503 : 500;
        ret = respond_error(c, code, "", "generation failed: %s", r->error);
    } else if (r->p.json) {
        ret = respond_json(c, 200, serve_json_result(s, r), NULL);
    } else {
        size_t size;
        uint8_t *png = serve_png_result(s, r, &size);
        ret = png ? respond(c, 200, png, size, "image/png", MHD_RESPMEM_MUST_FREE, NULL)
                  : respond_error(c, 500, "", "PNG encoding failed");
    }
    free(r->rgb);
    free(r);
    return ret;
}

/* ---- routing ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    serve_state *s = cls;
    request_ctx *rc = *con_cls;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0, post = strcmp(method, "POST") == 0;
    if (!rc) { /* first call: the headers */
        if (!(rc = calloc(1, sizeof *rc))) return MHD_NO;
        rc->post = post;
        *con_cls = rc;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (post && cl && strtoull(cl, NULL, 10) > SERVE_MAX_BODY)
            return respond_error(c, 413, "", "the body has %s bytes; %d at most", cl, SERVE_MAX_BODY);
        return MHD_YES;
    }
    if (*upload_size) { /* body bytes: kept up to the limit */
        if (!rc->too_large && rc->len + *upload_size <= SERVE_MAX_BODY) {
            char *grown = realloc(rc->body, rc->len + *upload_size + 1);
            if (!grown) return MHD_NO;
            rc->body = grown;
            memcpy(rc->body + rc->len, upload, *upload_size);
            rc->len += *upload_size;
            rc->body[rc->len] = 0;
        } else {
            rc->too_large = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rc->too_large) return respond_error(c, 413, "", "the body is larger than %d bytes", SERVE_MAX_BODY);
    if (strcmp(url, "/api/generate") == 0) {
        if (!post) return respond_error(c, 405, "POST", "use POST with a JSON body for /api/generate");
        return generate(s, c, rc);
    }
    int page = strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
    int api_get = strcmp(url, "/api/health") == 0 || strcmp(url, "/api/models") == 0 ||
                  strcmp(url, "/api/classes") == 0 || strcmp(url, "/api/stream") == 0;
    if (!page && !api_get)
        return respond_error(c, 404, "", "no such endpoint: %.100s (see /api/models; POST /api/generate)", url);
    if (!get) return respond_error(c, 405, "GET, HEAD", "%.100s answers GET only", url);
    if (page)
        return respond(c, 200, (void *)serve_page_start, (size_t)(serve_page_end - serve_page_start),
                       "text/html; charset=utf-8", MHD_RESPMEM_PERSISTENT, NULL);
    if (strcmp(url, "/api/health") == 0) return respond_json(c, 200, serve_json_health(s), NULL);
    if (strcmp(url, "/api/models") == 0) return respond_json(c, 200, serve_json_models(s), NULL);
    if (strcmp(url, "/api/classes") == 0) return respond_json(c, 200, serve_json_classes(s), NULL);
    return open_stream(s, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    request_ctx *rc = *con_cls;
    if (rc) free(rc->body);
    free(rc);
    *con_cls = NULL;
}

int serve_http_run(serve_state *s) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->opt.port);
    const char *host = strcmp(s->opt.host, "localhost") == 0 ? "127.0.0.1" : s->opt.host;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return cli_error("serve", "--host %s is not an IPv4 address (e.g. 127.0.0.1, 0.0.0.0)", s->opt.host);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
        s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->opt.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_END);
    if (!d) return cli_error("serve", "cannot listen on %s:%d: %s", s->opt.host, s->opt.port, strerror(errno));
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? (int)info->port : s->opt.port;
    fprintf(stderr, "[INFO ] serving on http://%s:%d/ (live demo page; API under /api/; Ctrl-C stops)\n", host, port);
    while (!interrupt_requested()) {
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "[INFO ] stopping\n");
    pthread_mutex_lock(&s->mu);
    s->quit = 1; /* ends the streams' reads and the waiting requests */
    pthread_cond_broadcast(&s->done);
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(d);
    return 0;
}
