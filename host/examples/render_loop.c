/* host/examples/render_loop.c — a render loop on libflowturbo: frames at a
 * target rate with frame pacing and double buffering into RGBA framebuffers.
 * While frame k is presented, frame k+1 is generated asynchronously
 * (ft_submit into the back buffer, ft_wait before the swap). Presenting =
 * streaming the frame as YUV4MPEG2 to stdout (or -o FILE):
 *
 *   render_loop --fps 12 --frames 240 | ffplay -      (or mpv -, or ffmpeg -i - out.mp4)
 *
 * The frames are a walk: the noise is slerped between consecutive seeds and
 * the class embedding blended from one class to the next (ft_slerp and
 * soft labels), so consecutive frames morph. The model is the one embedded
 * in the library. On stderr: time to first frame, steady frame rate, late
 * frames.
 *
 * Built with -DRENDER_LOOP_CUDA (and the CUDA runtime) the framebuffers are
 * CUDA device memory (cudaMallocPitch) and everything is ordered on the
 * loop's own stream: the copy of the front buffer to the host, then the
 * generation into the back buffer; the host waits only for the copy.
 *
 * Build: cc render_loop.c $(pkg-config --cflags --libs --static flowturbo) -o render_loop */
#include <flowturbo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef RENDER_LOOP_CUDA
#include <cuda_runtime.h>
#endif

typedef struct {
    double fps;
    int frames, threads, scale, steps_per_seed;
    unsigned long long seed;
    const char *sampler, *out;
} options;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_until(double t) {
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The request of frame f of the walk: seeds seed + s -> seed + s + 1 and classes s -> s + 1 (mod K), s = f / steps. */
typedef struct {
    int n_classes;
    size_t state;
    float *noise_a, *noise_b, *noise, *weights;
    long segment;
} walk;

static void walk_frame(walk *w, const options *o, const ft_output_shape *sh, int f, ft_generate_params *gp) {
    long seg = f / o->steps_per_seed;
    float t = (float)(f % o->steps_per_seed) / (float)o->steps_per_seed;
    if (seg != w->segment) {
        ft_noise(w->noise_a, 1, sh->latent_channels, sh->latent_size, o->seed + (unsigned long long)seg);
        ft_noise(w->noise_b, 1, sh->latent_channels, sh->latent_size, o->seed + (unsigned long long)seg + 1);
        w->segment = seg;
    }
    ft_slerp(w->noise, w->noise_a, w->noise_b, w->state, t);
    memset(w->weights, 0, (size_t)w->n_classes * sizeof(float));
    w->weights[seg % w->n_classes] += 1.0f - t;
    w->weights[(seg + 1) % w->n_classes] += t;
    ft_generate_params_init(gp);
    gp->num_images = 1;
    gp->noise = w->noise;
    gp->class_weights = w->weights;
    gp->sampler = o->sampler;
    gp->cfg_scale = 4.0f;
}

/* One y4m frame (4:4:4, BT.601 limited range) of an RGBA image, each pixel repeated scale x scale times. */
static void present(FILE *out, const uint8_t *rgba, size_t pitch, int S, int scale, uint8_t *planes) {
    int W = S * scale;
    size_t plane = (size_t)W * W;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = rgba + (size_t)(y / scale) * pitch + (size_t)(x / scale) * 4;
            int r = p[0], g = p[1], b = p[2];
            size_t i = (size_t)y * W + x;
            planes[i] = (uint8_t)(16 + ((66 * r + 129 * g + 25 * b + 128) >> 8));
            planes[plane + i] = (uint8_t)(128 + ((-38 * r - 74 * g + 112 * b + 128) >> 8));
            planes[2 * plane + i] = (uint8_t)(128 + ((112 * r - 94 * g - 18 * b + 128) >> 8));
        }
    fputs("FRAME\n", out);
    fwrite(planes, 1, 3 * plane, out);
}

static int parse(int argc, char **argv, options *o) {
    *o = (options){12.0, 120, 0, 0, 12, 0, "H1P5R3", NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return 0;
        if (strcmp(a, "--fps") == 0) o->fps = atof(v);
        else if (strcmp(a, "--frames") == 0) o->frames = atoi(v);
        else if (strcmp(a, "--threads") == 0) o->threads = atoi(v);
        else if (strcmp(a, "--scale") == 0) o->scale = atoi(v);
        else if (strcmp(a, "--steps-per-seed") == 0) o->steps_per_seed = atoi(v);
        else if (strcmp(a, "--seed") == 0) o->seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--sampler") == 0) o->sampler = v;
        else if (strcmp(a, "-o") == 0) o->out = v;
        else return 0;
        i++;
    }
    return o->fps >= 0 && o->frames >= 1 && o->threads >= 0 && o->scale >= 0 && o->steps_per_seed >= 1;
}

int main(int argc, char **argv) {
    ft_reexec_with_passive_threads(argv); /* idle OpenMP threads sleep: the host's other threads keep the cores */
    double t_start = now();
    options o;
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: %s [--fps N (0: as fast as possible)] [--frames N] [--threads N] [--sampler S]\n"
                        "       [--scale K] [--steps-per-seed N] [--seed N] [-o FILE.y4m]   (y4m on stdout)\n", argv[0]);
        return 2;
    }
    FILE *out = o.out ? fopen(o.out, "wb") : stdout;
    if (!out || (!o.out && isatty(1))) {
        fprintf(stderr, "%s: give -o FILE.y4m or pipe stdout into a player (| ffplay -, | mpv -)\n", argv[0]);
        return 2;
    }
    ft_context_params cp;
    ft_context_params_init(&cp);
    cp.n_threads = o.threads;
#ifdef RENDER_LOOP_CUDA
    cp.backend = FT_BACKEND_CUDA;
#else
    cp.backend = FT_BACKEND_CPU;
#endif
    ft_context *ctx = ft_context_new(&cp);
    ft_output_shape sh;
    if (!ctx || ft_load_embedded(ctx, FT_ROLE_PREDICTOR) != FT_OK || ft_load_embedded(ctx, FT_ROLE_REFINER) != FT_OK ||
        ft_get_output_shape(ctx, &sh) != FT_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], ctx ? ft_last_error(ctx) : "out of memory");
        ft_context_free(ctx);
        return 1;
    }
    int S = sh.image_size, scale = o.scale ? o.scale : (256 + S - 1) / S;
    ft_model_info mi;
    ft_model_get_info(ctx, FT_ROLE_PREDICTOR, &mi);
    walk w = {mi.num_classes, (size_t)sh.latent_channels * sh.latent_size * sh.latent_size, NULL, NULL, NULL, NULL, -1};
    w.noise_a = malloc(w.state * sizeof(float));
    w.noise_b = malloc(w.state * sizeof(float));
    w.noise = malloc(w.state * sizeof(float));
    w.weights = malloc((size_t)w.n_classes * sizeof(float));
    uint8_t *planes = malloc((size_t)3 * S * scale * S * scale);
    double *intervals = malloc((size_t)o.frames * sizeof(double));
    /* the two framebuffers: RGBA8 rows of pitch bytes */
    size_t pitch = (size_t)S * 4;
    uint8_t *fb[2] = {NULL, NULL};
    ft_frame_target target[2];
#ifdef RENDER_LOOP_CUDA
    uint8_t *host_front = NULL;
    cudaStream_t stream = NULL;
    cudaEvent_t copied = NULL;
    int cuda_ok = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess &&
                  cudaEventCreateWithFlags(&copied, cudaEventDisableTiming) == cudaSuccess;
    for (int i = 0; i < 2 && cuda_ok; i++) cuda_ok = cudaMallocPitch((void **)&fb[i], &pitch, (size_t)S * 4, S) == cudaSuccess;
    if (cuda_ok) cuda_ok = cudaMallocHost((void **)&host_front, pitch * S) == cudaSuccess;
    if (!cuda_ok) fprintf(stderr, "%s: CUDA setup failed: %s\n", argv[0], cudaGetErrorString(cudaGetLastError()));
#else
    int cuda_ok = 1;
    for (int i = 0; i < 2; i++) fb[i] = malloc(pitch * S);
#endif
    int rc = 1;
    if (!w.noise_a || !w.noise_b || !w.noise || !w.weights || !planes || !intervals || !fb[0] || !fb[1] || !cuda_ok)
        goto done;
    for (int i = 0; i < 2; i++) {
        ft_frame_target_init(&target[i]);
        target[i].pixels = fb[i];
        target[i].row_pitch = pitch;
#ifdef RENDER_LOOP_CUDA
        target[i].memory = FT_MEMORY_DEVICE;
        target[i].stream = stream;
#endif
    }
    fprintf(out, "YUV4MPEG2 W%d H%d F%d:1000 Ip A1:1 C444\n", S * scale, S * scale,
            (int)(1000 * (o.fps > 0 ? o.fps : 25)));
    ft_generate_params gp;
    walk_frame(&w, &o, &sh, 0, &gp);
    double t_gen = now();
    if (ft_submit(ctx, &gp, &target[0]) != FT_OK || ft_wait(ctx) != FT_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], ft_last_error(ctx));
        goto done;
    }
    double t_first = now(), t_prev = t_first, t0 = t_first;
    int late = 0;
    for (int k = 0; k < o.frames; k++) {
        int front = k & 1;
        const uint8_t *shown = fb[front];
#ifdef RENDER_LOOP_CUDA /* the front buffer to the host, then the next frame, both on the loop's stream */
        cudaMemcpy2DAsync(host_front, pitch, fb[front], pitch, (size_t)S * 4, S, cudaMemcpyDeviceToHost, stream);
        cudaEventRecord(copied, stream);
        shown = host_front;
#endif
        if (k + 1 < o.frames) { /* frame k+1 into the back buffer, generated while frame k is presented */
            walk_frame(&w, &o, &sh, k + 1, &gp);
            if (ft_submit(ctx, &gp, &target[!front]) != FT_OK) {
                fprintf(stderr, "%s: %s\n", argv[0], ft_last_error(ctx));
                goto done;
            }
        }
#ifdef RENDER_LOOP_CUDA
        cudaEventSynchronize(copied); /* only the copy, not the generation behind it */
#endif
        present(out, shown, pitch, S, scale, planes);
        double t = now();
        if (k > 0) intervals[k - 1] = t - t_prev;
        t_prev = t;
        if (o.fps > 0) { /* frame pacing: present k+1 at t0 + (k+1) / fps */
            double due = t0 + (k + 1) / o.fps;
            if (now() > due) late++;
            else sleep_until(due);
        }
        if (ft_wait(ctx) != FT_OK) {
            fprintf(stderr, "%s: %s\n", argv[0], ft_last_error(ctx));
            goto done;
        }
    }
    fflush(out);
    rc = ferror(out) ? 1 : 0;
    if (o.frames > 1) {
        qsort(intervals, (size_t)o.frames - 1, sizeof(double), cmp_double);
        double med = intervals[(o.frames - 1) / 2];
        fprintf(stderr,
                "render_loop: %s, %d frames of %dx%d (shown %dx%d), %s; time to first frame %.1f ms (of which "
                "generation %.1f ms); steady %.2f fps (median frame interval %.1f ms, target %s); %d late\n",
                ft_backend_name(ctx), o.frames, S, S, S * scale, S * scale, o.sampler, (t_first - t_start) * 1e3,
                (t_first - t_gen) * 1e3, 1.0 / med, med * 1e3, o.fps > 0 ? "paced" : "as fast as possible", late);
    }
done:
    ft_context_free(ctx); /* waits for a job still running */
#ifdef RENDER_LOOP_CUDA
    for (int i = 0; i < 2; i++) cudaFree(fb[i]);
    cudaFreeHost(host_front);
    if (copied) cudaEventDestroy(copied);
    if (stream) cudaStreamDestroy(stream);
#else
    for (int i = 0; i < 2; i++) free(fb[i]);
#endif
    free(w.noise_a);
    free(w.noise_b);
    free(w.noise);
    free(w.weights);
    free(planes);
    free(intervals);
    if (o.out && out) fclose(out);
    return rc;
}
