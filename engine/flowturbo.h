/*
 * flowturbo.h — the public C API of libflowturbo.
 *
 * flowturbo runs class-conditional flow models (SiT/DiT-family velocity
 * transformers), FlowTurbo's velocity refiner and the SD-VAE decoder, and
 * samples them with Euler, Heun or the FlowTurbo H/P/R sampler.
 *
 * Usage:
 *   ft_context_params cp; ft_context_params_init(&cp);
 *   ft_context *ctx = ft_context_new(&cp);
 *   if (ft_load(ctx, FT_ROLE_PREDICTOR, "sit.safetensors") != FT_OK)
 *       fprintf(stderr, "%s\n", ft_last_error(ctx));
 *   ft_generate_params gp; ft_generate_params_init(&gp);
 *   gp.num_images = 8; gp.labels = labels; gp.sampler = "H1P5R3";
 *   ft_generate(ctx, &gp, latents, images);
 *   ft_context_free(ctx);
 *
 * Rules: every call returns a status; the message behind a failure is in
 * ft_last_error(ctx). The library never calls exit() or abort(). A context
 * can be reused for any number of ft_generate calls and frees everything
 * it allocated in ft_context_free.
 *
 * Threads: a context is not thread-safe; one thread at a time may call it
 * (any thread, not only the one that made it). To serve several threads,
 * give each its own context; ft_context_new_shared makes contexts that share
 * one loaded model set (weights are read-only while sampling, so shared
 * contexts may run at the same time). Functions without a context
 * (ft_noise, ft_slerp, ft_sampler_describe, ...) are thread-safe.
 *
 * Render loops: ft_submit starts a generation that writes RGBA frames into
 * caller memory (host memory, or CUDA device memory on the caller's stream)
 * and returns at once; ft_wait / ft_pending complete it (see below).
 *
 * CPU threading: the CPU backend runs its threads only inside a call; when a
 * call returns no worker thread is left running, spinning or waiting (the
 * OpenMP pool is released), so a host application's own threads get the
 * cores. The OpenMP thread count of the calling thread is restored. Inside a
 * call, idle OpenMP threads spin-wait for a few ms unless the program was
 * started with OMP_WAIT_POLICY=passive; next to other busy threads that
 * costs several times the time (bench/RESULTS.md): start the program with it,
 * or call ft_reexec_with_passive_threads first thing in main().
 */
#ifndef FLOWTURBO_H
#define FLOWTURBO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FT_VERSION_MAJOR 0
#define FT_VERSION_MINOR 1
#define FT_VERSION_PATCH 0

typedef enum {
    FT_OK = 0,
    FT_ERR_INVALID_ARGUMENT = 1, /* a bad parameter: NULL, out of range, unparsable */
    FT_ERR_IO = 2,               /* a file could not be opened, read or written */
    FT_ERR_FORMAT = 3,           /* a file is malformed or does not match its config */
    FT_ERR_OUT_OF_MEMORY = 4,    /* host or device allocation failed */
    FT_ERR_UNSUPPORTED = 5,      /* valid request this build or device cannot run */
    FT_ERR_NOT_LOADED = 6,       /* a model the request needs was not loaded */
    FT_ERR_BACKEND = 7,          /* the compute backend reported an error */
    FT_ERR_CANCELLED = 8,        /* a progress callback asked to stop */
    FT_ERR_INTERNAL = 9,
    FT_ERR_BUSY = 10,            /* a job submitted with ft_submit is still running: ft_wait first */
    FT_ERR_NUMERIC = 11          /* a computation produced NaN or Inf (nothing of that batch is returned) */
} ft_status;

const char *ft_status_string(ft_status status);
const char *ft_version(void);

typedef enum { FT_LOG_DEBUG = 0, FT_LOG_INFO = 1, FT_LOG_WARN = 2, FT_LOG_ERROR = 3 } ft_log_level;

typedef enum {
    FT_PHASE_LOADING = 0,  /* step = tensors converted, total = tensors in file */
    FT_PHASE_SAMPLING = 1, /* step = sampler steps done in this batch, total = steps */
    FT_PHASE_DECODING = 2, /* step = images decoded, total = images in batch */
    FT_PHASE_BATCH = 3     /* step = images finished, total = images requested */
} ft_phase;

typedef void (*ft_log_cb)(ft_log_level level, const char *message, void *user);
/* Return non-zero to cancel the running call (it returns FT_ERR_CANCELLED). On the CUDA backend the sampling-step
 * callbacks run on a CUDA-internal thread while the GPU works (host nodes of the trajectory's graph): they must not
 * call ft_* functions, and with graphs a cancel takes effect when the current batch's trajectory has finished. */
typedef int (*ft_progress_cb)(ft_phase phase, int step, int total, void *user);

/* Bounds on untrusted numbers, checked before any work: more threads than FT_MAX_THREADS or a guidance scale
 * outside [-FT_MAX_CFG_SCALE, FT_MAX_CFG_SCALE] is refused. */
#define FT_MAX_THREADS 1024
#define FT_MAX_CFG_SCALE 1.0e6f

typedef enum { FT_BACKEND_AUTO = 0, FT_BACKEND_CPU = 1, FT_BACKEND_CUDA = 2 } ft_backend_kind;
typedef enum { FT_DTYPE_F32 = 0, FT_DTYPE_F16 = 1, FT_DTYPE_BF16 = 2 } ft_dtype;

typedef struct {
    ft_backend_kind backend; /* AUTO: CUDA when a usable GPU is present, else CPU */
    int device;              /* CUDA device ordinal */
    int n_threads;           /* CPU threads; <= 0: all cores available to the process; more than that is capped
                                to it; above FT_MAX_THREADS the context refuses to start */
    ft_dtype compute_dtype;  /* GEMM operand type of the transformers on GPU backends (CPU is always F32; the
                                VAE decoder runs fp16 on GPUs whatever this is: see kernels/backend.h) */
    int use_graphs;          /* CUDA: capture whole trajectories into graphs (default 1) */
    ft_log_cb log_cb;        /* NULL: quiet */
    void *log_user;
    ft_progress_cb progress_cb;
    void *progress_user;
} ft_context_params;

void ft_context_params_init(ft_context_params *params);

typedef struct ft_context ft_context;

/* Returns NULL only when the host is out of memory. A backend that cannot be
 * started (no GPU for FT_BACKEND_CUDA) makes every later call fail with the
 * reason in ft_last_error. */
ft_context *ft_context_new(const ft_context_params *params);
void ft_context_free(ft_context *ctx);
const char *ft_last_error(const ft_context *ctx);
/* Name of the backend the context runs on ("cpu", "cuda"). */
const char *ft_backend_name(const ft_context *ctx);

/* A new context that uses the models loaded in source, shared and
 * reference-counted (no second copy of the weights; source may be freed
 * first). The backend, device and compute_dtype come from source, the rest
 * from params (may be NULL). A later ft_load on either context replaces the
 * model for that context only. Must not run at the same time as a call on
 * source; afterwards the two contexts are independent and may be used from
 * different threads at the same time. */
ft_context *ft_context_new_shared(const ft_context_params *params, const ft_context *source);

typedef enum { FT_ROLE_PREDICTOR = 0, FT_ROLE_REFINER = 1, FT_ROLE_VAE = 2 } ft_role;

/* Loads (or replaces) the model of a role from an engine safetensors file. */
ft_status ft_load(ft_context *ctx, ft_role role, const char *path);
/* The same from a file image in memory (e.g. a model embedded in a binary);
 * name is used in messages. The bytes are converted at load, not kept. */
ft_status ft_load_memory(ft_context *ctx, ft_role role, const void *data, size_t size, const char *name);
/* Loads the model compiled into the library: a class-conditional SiT
 * (FT_ROLE_PREDICTOR) and its FlowTurbo refiner (FT_ROLE_REFINER) trained on
 * Fashion-MNIST: 32x32 grey images, 10 named classes, no VAE (pixel space). */
ft_status ft_load_embedded(ft_context *ctx, ft_role role);

/* The Fashion-MNIST models compiled into the library (weights_tool/fashion/ trains them), as safetensors bytes for
 * ft_load_memory: FT_ROLE_PREDICTOR a class-conditional SiT on 32x32 grey pixels with 10 named classes,
 * FT_ROLE_REFINER its FlowTurbo velocity refiner. *name (when name is not NULL) gets FT_DEFAULT_PREDICTOR_NAME or
 * FT_DEFAULT_REFINER_NAME. Returns NULL (size 0) for FT_ROLE_VAE: the embedded model works in pixels. */
#define FT_DEFAULT_PREDICTOR_NAME "embedded:fashion_sit"
#define FT_DEFAULT_REFINER_NAME "embedded:fashion_refiner"
/* The sampler for the embedded model: the configuration with the best measured quality per millisecond on it
 * (bench/RESULTS.md, issue 12); `flowturbo generate` uses it when no --sampler is given. */
#define FT_DEFAULT_SAMPLER "H2P4R2"
const void *ft_default_model(ft_role role, size_t *size, const char **name);

typedef struct {
    int loaded;
    /* transformer roles */
    int input_size, in_channels, patch_size, hidden_size, depth, num_heads;
    int mlp_hidden, num_classes, learn_sigma, guided_channels;
    /* VAE role */
    int latent_channels, out_channels, upscale;
    float scaling_factor;
    size_t n_params;
} ft_model_info;

ft_status ft_model_get_info(const ft_context *ctx, ft_role role, ft_model_info *info);
/* Name of a class from the predictor's optional "class_names" metadata, or NULL. */
const char *ft_class_name(const ft_context *ctx, int class_id);
/* The class id whose name is name (ASCII case-insensitive), or -1 when the predictor has no such class name. */
int ft_class_id(const ft_context *ctx, const char *name);

/* Shape of what ft_generate writes for the loaded models. */
typedef struct {
    int latent_channels, latent_size; /* per image: latent_channels * latent_size^2 floats */
    int image_size;                   /* per image: image_size^2 * 3 bytes (RGB) */
    int can_make_images;              /* 0 for latent models without a VAE */
} ft_output_shape;

ft_status ft_get_output_shape(const ft_context *ctx, ft_output_shape *shape);

typedef struct {
    int num_images;        /* images to make */
    const int *labels;     /* [num_images] class ids in [0, num_classes) */
    uint64_t seed;         /* image k of the call uses noise seed + k */
    const float *noise;    /* optional [num_images, C, S, S] initial noise; overrides seed */
    const char *sampler;   /* "H1P5R3", "heun:8", "euler:50", ... */
    float cfg_scale;       /* <= 1: no guidance (no batch doubling); |cfg_scale| <= FT_MAX_CFG_SCALE */
    int batch_size;        /* images per model batch; <= 0: all at once */
    const uint64_t *seeds; /* optional [num_images] noise seed of each image; overrides seed (noise overrides both) */
    /* optional [num_images, num_classes] soft labels: image k is conditioned on the embedding
     * sum_c w[k][c] * E[c] (the terms with w != 0, c ascending, in float), e.g. (1 - t) E[a] + t E[b] to morph
     * class a into b; overrides labels (which may then be NULL). Values must be finite. */
    const float *class_weights;
} ft_generate_params;

void ft_generate_params_init(ft_generate_params *params);

/* Samples num_images images. latents_out ([num_images, C, S, S] float, the
 * final ODE state) and images_out ([num_images, H, W, 3] uint8 RGB) may each
 * be NULL; images need a VAE for latent models. */
ft_status ft_generate(ft_context *ctx, const ft_generate_params *params, float *latents_out,
                      uint8_t *images_out);

/* Decodes n latents ([n, C, latent_size, latent_size] float, in the
 * sampler's space) to uint8 RGB images [n, H, W, 3] with the loaded VAE, or,
 * without a VAE, maps pixel-space states (C = 1 or 3, C taken from the
 * predictor) directly. ft_decoded_size gives H (= W). */
ft_status ft_decode(ft_context *ctx, const float *latents, int n, int latent_size, uint8_t *images_out);
int ft_decoded_size(const ft_context *ctx, int latent_size);

/* What a sampler string means (no context needed). */
typedef struct {
    char name[32];   /* canonical form: "H1P5R3", "heun:8", "euler:50", "heun:8/s2" (shifted grid) */
    int euler;       /* 1 for euler:N */
    int steps;       /* N: points of the time grid minus one */
    int heun_blocks, pseudo_blocks, refiner_blocks;
    int predictor_calls;      /* predictor calls per trajectory (2B rows each with guidance) */
    int refiner_calls;        /* refiner calls per trajectory with a released refiner (metadata refiner_kind
                               * "released" or none): two per R step, 2B rows each with guidance */
    int guided_refiner_calls; /* the same with a guided refiner (refiner_kind "guided"): one per R step, on the
                               * B guided rows. Which one a run makes depends on the loaded refiner */
} ft_sampler_info;

/* Parses a sampler string; on failure writes the reason to err (may be NULL). */
ft_status ft_sampler_describe(const char *sampler, ft_sampler_info *info, char *err, size_t err_size);

/* Checks a sampler string without running it. On failure the reason is in
 * ft_last_error(ctx) (ctx may be NULL, then no message is kept). */
ft_status ft_sampler_check(ft_context *ctx, const char *sampler);

/* Noise exactly as ft_generate makes it: [n, channels, size, size] floats,
 * image k from seed + k (Philox4x32-10 + Box-Muller, see README). */
void ft_noise(float *out, int n, int channels, int size, uint64_t seed);

/* Spherical interpolation of two noise vectors of n floats, the standard way
 * to walk between seeds (each step stays a plausible Gaussian sample):
 *   out = sin((1-t) w) / sin(w) a + sin(t w) / sin(w) b,  cos(w) = a.b / (|a| |b|)
 * (dot products in double; linear interpolation when a and b are (anti)parallel
 * within 1e-6). t = 0 gives a and t = 1 gives b exactly. out may alias a or b. */
void ft_slerp(float *out, const float *a, const float *b, size_t n, float t);

/* Call first thing in main() of a program that uses the CPU backend next to
 * other busy threads: when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set,
 * sets OMP_WAIT_POLICY=PASSIVE (and OPENBLAS_NUM_THREADS=1 unless set: the
 * engine runs OpenBLAS single-threaded, and OpenBLAS's own pool busy-waits
 * after it starts) and re-executes the program (/proc/self/exe,
 * same argv and environment otherwise), because the OpenMP runtime reads it
 * only when it starts. Returns when nothing had to be done or the exec failed. */
void ft_reexec_with_passive_threads(char **argv);

/* Host memory for images that ft_generate fills fastest: pinned (page-locked) on the CUDA backend, so the
 * device-to-host copy of a batch is one DMA that overlaps work on other contexts' streams; plain memory on the
 * CPU. NULL when out of memory or when ctx has no backend. Free with ft_host_free on the same context (or one
 * of its shared contexts), before the context is freed. Not for the sampling loop: allocate once. */
void *ft_host_alloc(ft_context *ctx, size_t bytes);
void ft_host_free(ft_context *ctx, void *ptr);

/* ---- render loops: asynchronous generation into caller memory ---- */

typedef enum {
    FT_PIXELS_RGBA8 = 0,  /* 4 bytes a pixel: the RGB bytes of ft_generate, alpha 255 */
    FT_PIXELS_RGBA_F32 = 1 /* 4 floats a pixel: clamp(0.5 v + 0.5, 0, 1) of the model output v, alpha 1 */
} ft_pixel_format;

typedef enum {
    FT_MEMORY_HOST = 0,   /* memory the CPU can write */
    FT_MEMORY_DEVICE = 1  /* the backend's memory: CUDA device memory on the CUDA backend (host memory on the CPU one) */
} ft_memory_kind;

/* Where ft_submit writes its images: image k, row y, pixel x starts at byte
 * k * image_pitch + y * row_pitch + x * pixel size of pixels. Rows are
 * image_size pixels (ft_output_shape); bytes between rows are left alone. */
typedef struct {
    ft_memory_kind memory;
    ft_pixel_format format;
    void *pixels;
    size_t row_pitch;   /* bytes from a row to the next: >= image_size * pixel size */
    size_t image_pitch; /* bytes from an image to the next; 0: image_size * row_pitch */
    /* FT_MEMORY_DEVICE on CUDA: the cudaStream_t (as void *) the caller orders this frame on, NULL for the legacy
     * default stream. The generation starts after the work already enqueued on it and work the caller enqueues
     * on it after ft_submit runs after the frame is written: no host round trip, no device synchronisation. */
    void *stream;
} ft_frame_target;

void ft_frame_target_init(ft_frame_target *target);

/* Starts generating params->num_images images into target and returns
 * without waiting (checks of the request are done before it returns; their
 * failures come back from here). params and its arrays are copied: they may
 * change once ft_submit returns. On the CPU backend (and for host memory on
 * CUDA) a worker thread of the context runs the job; on CUDA with device
 * memory the job is only enqueued on the GPU (the first job of a new
 * configuration allocates and captures its plan, which waits). A request of
 * more than one batch waits for all but its last batch.
 * Until ft_wait has returned, the context answers every other call with
 * FT_ERR_BUSY (ft_pending, ft_last_error and ft_context_free excepted:
 * ft_context_free waits for the job). Progress callbacks run on the worker
 * thread (CPU) or a CUDA thread. */
ft_status ft_submit(ft_context *ctx, const ft_generate_params *params, const ft_frame_target *target);
/* Waits for the submitted job and returns its status (FT_OK when none is
 * pending). On CUDA with device memory this waits on the host for the job's
 * own completion event only. */
ft_status ft_wait(ft_context *ctx);
/* 1 while a submitted job is running, 0 when ft_wait would return at once. */
int ft_pending(ft_context *ctx);

#ifdef __cplusplus
}
#endif
#endif /* FLOWTURBO_H */
