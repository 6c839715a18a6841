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
 * it allocated in ft_context_free. A context is not thread-safe: use one
 * per thread.
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
    FT_ERR_INTERNAL = 9
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

typedef enum { FT_BACKEND_AUTO = 0, FT_BACKEND_CPU = 1, FT_BACKEND_CUDA = 2 } ft_backend_kind;
typedef enum { FT_DTYPE_F32 = 0, FT_DTYPE_F16 = 1, FT_DTYPE_BF16 = 2 } ft_dtype;

typedef struct {
    ft_backend_kind backend; /* AUTO: CUDA when a usable GPU is present, else CPU */
    int device;              /* CUDA device ordinal */
    int n_threads;           /* CPU threads; <= 0 means all online cores */
    ft_dtype compute_dtype;  /* GEMM operand type on GPU backends (CPU is always F32) */
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

typedef enum { FT_ROLE_PREDICTOR = 0, FT_ROLE_REFINER = 1, FT_ROLE_VAE = 2 } ft_role;

/* Loads (or replaces) the model of a role from an engine safetensors file. */
ft_status ft_load(ft_context *ctx, ft_role role, const char *path);
/* The same from a file image in memory (e.g. a model embedded in a binary);
 * name is used in messages. The bytes are converted at load, not kept. */
ft_status ft_load_memory(ft_context *ctx, ft_role role, const void *data, size_t size, const char *name);

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
    float cfg_scale;       /* <= 1: no guidance (no batch doubling) */
    int batch_size;        /* images per model batch; <= 0: all at once */
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
    int predictor_calls, refiner_calls; /* network calls per trajectory (2B rows each with guidance);
                                         * refiner_calls counts the released refiner's two calls per R
                                         * step (a guided refiner, refiner_kind "guided", makes one, on B rows) */
} ft_sampler_info;

/* Parses a sampler string; on failure writes the reason to err (may be NULL). */
ft_status ft_sampler_describe(const char *sampler, ft_sampler_info *info, char *err, size_t err_size);

/* Checks a sampler string without running it. On failure the reason is in
 * ft_last_error(ctx) (ctx may be NULL, then no message is kept). */
ft_status ft_sampler_check(ft_context *ctx, const char *sampler);

/* Noise exactly as ft_generate makes it: [n, channels, size, size] floats,
 * image k from seed + k (Philox4x32-10 + Box-Muller, see README). */
void ft_noise(float *out, int n, int channels, int size, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif /* FLOWTURBO_H */
