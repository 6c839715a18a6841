/* host/serve_api.c — `serve`: request checking (every bad field gets a 4xx
 * with its name) and the JSON / PNG answers (serve.h). */
#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../engine/json.h"
#include "image_grid.h"
#include "image_params.h"
#include "png.h"
#include "progress.h"
#include "serve.h"

#define CFG_MAX 50.0
#define FIELDS "class, classes, num_images, seed, sampler, cfg_scale, format"

static int fail(serve_error *e, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(serve_error *e, int status, const char *field, const char *fmt, ...) {
    e->status = status;
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int serve_class_lookup(const serve_state *s, const char *text) {
    if (!text || !*text) return -1;
    char *end;
    long v = strtol(text, &end, 10);
    if (*end == 0 && isdigit((unsigned char)text[0])) return v >= 0 && v < s->num_classes ? (int)v : -1;
    for (int c = 0; c < s->num_classes; c++)
        if (s->class_names[c] && strcasecmp(s->class_names[c], text) == 0) return c;
    return -1;
}

static void class_help(const serve_state *s, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "ids 0..%d", s->num_classes - 1);
    if (strcmp(s->class_names[0], "0") == 0) return; /* no names */
    n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, " or names:");
    for (int c = 0; c < s->num_classes && n + 32 < cap; c++)
        n += (size_t)snprintf(buf + n, cap - n, "%s '%s'", c ? "," : "", s->class_names[c]);
}

/* A class given as a JSON number or string (the token t just read from r). */
static int parse_class(const serve_state *s, json_token t, const json_reader *r, const char *field, int *out,
                       serve_error *e) {
    char help[300];
    class_help(s, help, sizeof help);
    if (t == JSON_NUMBER) {
        if (!r->is_uint || r->uint >= (uint64_t)s->num_classes)
            return fail(e, 400, field, "class %g is not a class of this model (%s)", r->number, help);
        *out = (int)r->uint;
        return 0;
    }
    if (t == JSON_STRING) {
        *out = serve_class_lookup(s, r->str);
        if (*out < 0) return fail(e, 400, field, "unknown class '%.60s' (%s)", r->str, help);
        return 0;
    }
    return fail(e, 400, field, "a class is a number or a name (%s)", help);
}

static int check_sampler(const serve_state *s, const char *text, char *out, serve_error *e, const char *field) {
    ft_sampler_info si;
    char err[256];
    if (ft_sampler_describe(text, &si, err, sizeof err) != FT_OK)
        return fail(e, 400, field, "%s (e.g. H1P5R3, heun:8, euler:20)", err);
    if (si.refiner_blocks > 0 && !s->refiner_name)
        return fail(e, 400, field, "sampler %s needs a refiner, and this server has none: use H<a>P<b> or heun:N",
                    si.name);
    if (si.steps > 1000) return fail(e, 400, field, "sampler %s has %d steps; the server allows 1000", si.name, si.steps);
    snprintf(out, 32, "%s", si.name);
    return 0;
}

static int check_cfg(double v, serve_error *e, const char *field) {
    if (!isfinite(v) || v < 0.0 || v > CFG_MAX)
        return fail(e, 400, field, "cfg_scale must be a number in [0, %g] (<= 1: no guidance), got %g", CFG_MAX, v);
    return 0;
}

/* The token just read opened an object or array: reads up to its end. */
static void skip_container(json_reader *r, json_token t) {
    if (t != JSON_OBJECT_BEGIN && t != JSON_ARRAY_BEGIN) return;
    int outer = r->depth - 1;
    while ((t = json_next(r)) != JSON_ERROR && t != JSON_END && r->depth > outer) {
    }
}

/* One member of the request object: its key is r->str (copied to key), its value is the next token. */
static int parse_member(const serve_state *s, json_reader *r, const char *key, serve_params *p, int *cls,
                        int *have_class, int *have_classes, int *n_set, serve_error *e) {
    json_token v = json_next(r);
    int rc = -1;
    if (strcmp(key, "class") == 0) {
        rc = parse_class(s, v, r, "class", cls, e);
        *have_class = 1;
    } else if (strcmp(key, "classes") == 0) {
        int n = 0;
        if (v == JSON_ARRAY_BEGIN)
            for (json_token t; (t = json_next(r)) != JSON_ARRAY_END;) {
                if (t == JSON_ERROR || n == SERVE_MAX_IMAGES) { n = -1; break; }
                if (parse_class(s, t, r, "classes", &p->labels[n++], e)) { skip_container(r, t); goto out; }
            }
        if (n < 1) {
            fail(e, 400, "classes", "classes must be an array of 1 to %d classes", SERVE_MAX_IMAGES);
            goto out;
        }
        *have_classes = n;
        return 0;
    } else if (strcmp(key, "num_images") == 0) {
        if (v != JSON_NUMBER || !r->is_uint || r->uint < 1 || r->uint > SERVE_MAX_IMAGES) {
            fail(e, 400, "num_images", "num_images must be an integer from 1 to %d", SERVE_MAX_IMAGES);
            goto out;
        }
        p->n = (int)r->uint;
        *n_set = 1;
        rc = 0;
    } else if (strcmp(key, "seed") == 0) {
        if (v != JSON_NUMBER || !r->is_uint || r->uint > (1ull << 53)) {
            fail(e, 400, "seed", "seed must be an integer from 0 to 2^53");
            goto out;
        }
        p->seed = r->uint;
        rc = 0;
    } else if (strcmp(key, "sampler") == 0) {
        if (v != JSON_STRING) {
            fail(e, 400, "sampler", "sampler must be a string such as \"H1P5R3\", \"heun:8\" or \"euler:20\"");
            goto out;
        }
        rc = check_sampler(s, r->str, p->sampler, e, "sampler");
    } else if (strcmp(key, "cfg_scale") == 0) {
        if (v != JSON_NUMBER) {
            fail(e, 400, "cfg_scale", "cfg_scale must be a number");
            goto out;
        }
        rc = check_cfg(r->number, e, "cfg_scale");
        p->cfg_scale = (float)r->number;
    } else if (strcmp(key, "format") == 0) {
        if (v != JSON_STRING || (strcmp(r->str, "png") && strcmp(r->str, "json"))) {
            fail(e, 400, "format", "format must be \"png\" (the image, or a grid of them) or \"json\" (base64 PNGs)");
            goto out;
        }
        p->json = strcmp(r->str, "json") == 0;
        rc = 0;
    } else {
        fail(e, 400, key, "unknown field '%.40s' (fields: " FIELDS ")", key);
    }
out:
    skip_container(r, v);
    return rc;
}

int serve_parse_generate(const serve_state *s, const char *body, size_t len, serve_params *p, serve_error *e) {
    memset(p, 0, sizeof *p);
    p->n = 1;
    p->cfg_scale = 4.0f;
    snprintf(p->sampler, sizeof p->sampler, "%s", s->default_sampler);
    /* the whole body is checked to be JSON first, then read member by member (the engine's streaming reader) */
    json_reader r;
    json_reader_init(&r, body, len, 16);
    json_token t;
    while ((t = json_next(&r)) != JSON_END && t != JSON_ERROR) {
    }
    if (t == JSON_ERROR) {
        fail(e, 400, "", "the body is not valid JSON: %s", r.error);
        json_reader_free(&r);
        return -1;
    }
    json_reader_free(&r);
    json_reader_init(&r, body, len, 16);
    int rc = -1, n_set = 0, cls = 0, have_class = 0, have_classes = 0;
    if (json_next(&r) != JSON_OBJECT_BEGIN) {
        fail(e, 400, "", "the body must be a JSON object with the fields " FIELDS);
        goto out;
    }
    while ((t = json_next(&r)) == JSON_KEY) {
        char key[64];
        snprintf(key, sizeof key, "%s", r.str);
        if (parse_member(s, &r, key, p, &cls, &have_class, &have_classes, &n_set, e)) goto out;
    }
    if (have_class && have_classes) {
        fail(e, 400, "classes", "give either class or classes, not both");
        goto out;
    }
    if (have_classes) {
        if (n_set && p->n != have_classes) {
            fail(e, 400, "num_images", "num_images is %d but classes lists %d", p->n, have_classes);
            goto out;
        }
        p->n = have_classes;
    } else {
        for (int k = 0; k < p->n; k++) p->labels[k] = cls;
    }
    rc = 0;
out:
    json_reader_free(&r);
    return rc;
}

int serve_parse_stream(const serve_state *s, const char *(*get)(void *user, const char *name), void *user,
                       serve_stream *p, serve_error *e) {
    memset(p, 0, sizeof *p);
    p->cls = -1;
    p->cfg_scale = 4.0f;
    p->walk = 1;
    p->walk_frames = 24;
    snprintf(p->sampler, sizeof p->sampler, "%s", s->default_sampler);
    const char *v;
    char *end;
    if ((v = get(user, "class")) && strcmp(v, "all") != 0) {
        p->cls = serve_class_lookup(s, v);
        if (p->cls < 0) {
            char help[300];
            class_help(s, help, sizeof help);
            return fail(e, 400, "class", "unknown class '%.60s' (%s, or all)", v, help);
        }
    }
    if ((v = get(user, "sampler")) && check_sampler(s, v, p->sampler, e, "sampler")) return -1;
    if ((v = get(user, "cfg"))) {
        double c = strtod(v, &end);
        if (end == v || *end) return fail(e, 400, "cfg", "cfg must be a number, got '%.40s'", v);
        if (check_cfg(c, e, "cfg")) return -1;
        p->cfg_scale = (float)c;
    }
    if ((v = get(user, "seed"))) {
        unsigned long long x = strtoull(v, &end, 10);
        if (end == v || *end || v[0] == '-' || x > (1ull << 53))
            return fail(e, 400, "seed", "seed must be an integer from 0 to 2^53, got '%.40s'", v);
        p->seed = x;
    }
    if ((v = get(user, "walk"))) {
        if (strcmp(v, "0") && strcmp(v, "1")) return fail(e, 400, "walk", "walk must be 0 or 1, got '%.20s'", v);
        p->walk = v[0] == '1';
    }
    if ((v = get(user, "speed"))) {
        long f = strtol(v, &end, 10);
        if (end == v || *end || f < 2 || f > 600)
            return fail(e, 400, "speed", "speed (frames from one seed to the next) must be 2..600, got '%.20s'", v);
        p->walk_frames = (int)f;
    }
    return 0;
}

char *serve_json_error(const serve_error *e) {
    sbuf b = {0};
    sb_printf(&b, "{\"error\":");
    sb_json_string(&b, e->msg);
    if (e->field[0]) {
        sb_printf(&b, ",\"field\":");
        sb_json_string(&b, e->field);
    }
    sb_printf(&b, ",\"status\":%d}", e->status);
    return sb_take(&b);
}

static void classes_array(sbuf *b, const serve_state *s) {
    sb_printf(b, "[");
    for (int c = 0; c < s->num_classes; c++) {
        sb_printf(b, "%s{\"id\":%d,\"name\":", c ? "," : "", c);
        sb_json_string(b, s->class_names[c]);
        sb_printf(b, "}");
    }
    sb_printf(b, "]");
}

char *serve_json_classes(const serve_state *s) {
    sbuf b = {0};
    sb_printf(&b, "{\"classes\":");
    classes_array(&b, s);
    sb_printf(&b, "}");
    return sb_take(&b);
}

static void model_info(sbuf *b, const serve_state *s, ft_role role, const char *name) {
    ft_model_info mi;
    ft_model_get_info(s->ctx[0], role, &mi);
    if (!mi.loaded) {
        sb_printf(b, "null");
        return;
    }
    sb_printf(b, "{\"name\":");
    sb_json_string(b, name);
    if (role == FT_ROLE_VAE)
        sb_printf(b, ",\"latent_channels\":%d,\"upscale\":%d", mi.latent_channels, mi.upscale);
    else
        sb_printf(b, ",\"input_size\":%d,\"in_channels\":%d,\"patch_size\":%d,\"hidden_size\":%d,\"depth\":%d,"
                  "\"num_heads\":%d,\"num_classes\":%d",
                  mi.input_size, mi.in_channels, mi.patch_size, mi.hidden_size, mi.depth, mi.num_heads,
                  mi.num_classes);
    sb_printf(b, ",\"params\":%zu}", mi.n_params);
}

char *serve_json_models(const serve_state *s) {
    sbuf b = {0};
    sb_printf(&b, "{\"predictor\":");
    model_info(&b, s, FT_ROLE_PREDICTOR, s->model_name);
    sb_printf(&b, ",\"refiner\":");
    model_info(&b, s, FT_ROLE_REFINER, s->refiner_name);
    sb_printf(&b, ",\"vae\":");
    model_info(&b, s, FT_ROLE_VAE, s->vae_name);
    sb_printf(&b, ",\"backend\":\"%s\",\"image_size\":%d,\"channels\":%d,\"classes\":", ft_backend_name(s->ctx[0]),
              s->image_size, s->channels);
    classes_array(&b, s);
    sb_printf(&b, ",\"samplers\":[%s\"H1P5\",\"H2P4\",\"heun:4\",\"heun:8\",\"euler:8\",\"euler:20\"],",
              s->refiner_name ? "\"H1P5R3\",\"H1P3R2\",\"H2P4R2\"," : "");
    sb_printf(&b, "\"defaults\":{\"sampler\":\"%s\",\"cfg_scale\":4,\"seed\":0,\"num_images\":1,\"format\":\"png\"},",
              s->default_sampler);
    sb_printf(&b, "\"limits\":{\"num_images\":%d,\"batch\":%d,\"queue\":%d,\"streams\":%d,\"body_bytes\":%d,"
                  "\"cfg_scale\":%g}}",
              SERVE_MAX_IMAGES, s->opt.max_batch, s->opt.queue, s->opt.max_streams, SERVE_MAX_BODY, CFG_MAX);
    return sb_take(&b);
}

char *serve_json_health(serve_state *s) {
    sbuf b = {0};
    pthread_mutex_lock(&s->mu);
    sb_printf(&b,
              "{\"status\":\"ok\",\"backend\":\"%s\",\"workers\":%d,\"uptime_s\":%.1f,\"queue\":{\"length\":%d,"
              "\"capacity\":%d},\"streams\":{\"active\":%d,\"max\":%d},\"requests\":{\"ok\":%llu,\"failed\":%llu},"
              "\"batches\":%llu,\"batched_requests\":%llu,\"frames\":%llu}",
              ft_backend_name(s->ctx[0]), s->opt.workers, now_seconds() - s->t_start, s->q_len, s->opt.queue,
              s->n_streams, s->opt.max_streams, (unsigned long long)s->requests_ok,
              (unsigned long long)s->requests_failed, (unsigned long long)s->batches,
              (unsigned long long)s->batched_requests, (unsigned long long)s->frames);
    pthread_mutex_unlock(&s->mu);
    return sb_take(&b);
}

/* PNG of image k (or, k < 0, of the grid of all) with the A1111-style parameters chunk. */
static uint8_t *encode_png(const serve_state *s, const serve_request *r, int k, size_t *size) {
    int IS = s->image_size, ch = s->channels, w = IS, h = IS;
    size_t img = (size_t)IS * IS;
    uint8_t *px = malloc(img * 3 * (size_t)(k < 0 ? r->p.n : 1));
    if (!px) return NULL;
    int n = k < 0 ? r->p.n : 1;
    const uint8_t *src = r->rgb + (size_t)(k < 0 ? 0 : k) * img * 3;
    for (size_t i = 0; i < img * (size_t)n; i++)
        for (int c = 0; c < ch; c++) px[i * ch + c] = src[i * 3 + c]; /* grey models: the R byte (= G = B) */
    uint8_t *pixels = px;
    if (k < 0 && n > 1) {
        pixels = image_grid(px, n, IS, ch, grid_default_cols(n), &w, &h);
        free(px);
        if (!pixels) return NULL;
    }
    ft_sampler_info si;
    ft_sampler_describe(r->p.sampler, &si, NULL, 0);
    char first[64], text[1024];
    if (k < 0 && n > 1) snprintf(first, sizeof first, "classes %d..", r->p.labels[0]);
    else snprintf(first, sizeof first, "class %d", r->p.labels[k < 0 ? 0 : k]);
    image_params ip = {si.steps, si.name, r->p.cfg_scale, IS, IS, s->model_name,
                       si.refiner_blocks ? s->refiner_name : NULL, s->vae_name, NULL};
    format_image_params(text, sizeof text, first, &ip, r->p.seed + (uint64_t)(k < 0 ? 0 : k));
    ftpng_text t = {"parameters", text};
    uint8_t *out = NULL;
    hx_err err;
    if (ftpng_encode(pixels, w, h, ch, &t, 1, &out, size, &err) != 0) out = NULL;
    free(pixels);
    return out;
}

uint8_t *serve_png_result(const serve_state *s, const serve_request *r, size_t *size) {
    return encode_png(s, r, r->p.n == 1 ? 0 : -1, size);
}

char *serve_json_result(const serve_state *s, const serve_request *r) {
    sbuf b = {0};
    sb_printf(&b, "{\"images\":[");
    for (int k = 0; k < r->p.n; k++) {
        size_t size;
        uint8_t *png = encode_png(s, r, k, &size);
        if (!png) {
            free(b.buf);
            return NULL;
        }
        sb_printf(&b, "%s{\"class\":%d,\"class_name\":", k ? "," : "", r->p.labels[k]);
        sb_json_string(&b, s->class_names[r->p.labels[k]]);
        sb_printf(&b, ",\"seed\":%llu,\"png_base64\":\"", (unsigned long long)(r->p.seed + (uint64_t)k));
        sb_base64(&b, png, size);
        sb_printf(&b, "\"}");
        free(png);
    }
    sb_printf(&b, "],\"parameters\":{\"sampler\":\"%s\",\"cfg_scale\":%g,\"seed\":%llu,\"num_images\":%d,"
                  "\"width\":%d,\"height\":%d},",
              r->p.sampler, (double)r->p.cfg_scale, (unsigned long long)r->p.seed, r->p.n, s->image_size,
              s->image_size);
    sb_printf(&b, "\"timing\":{\"queue_ms\":%.2f,\"generate_ms\":%.2f},\"batch\":{\"requests\":%d,\"images\":%d}}",
              (r->t_started - r->t_queued) * 1e3, (r->t_finished - r->t_started) * 1e3, r->batch_requests,
              r->batch_images);
    return sb_take(&b);
}
