/* kernels/cuda/registry.cu — the process-wide registry of device allocations and of the act copies of biases
 * (FT_WEIGHT_BIAS), shared by every CUDA backend of the process: a context made with ft_context_new_shared runs
 * on its own backend with weights another backend uploaded (and the last context to release a model frees it,
 * whichever backend allocated it), so a per-backend registry would miss them (fm_conv refused the bias, GEMMs
 * lost the fused bf16 bias). Pointers are unique in the process (unified addressing). One mutex: lookups
 * happen when ops are enqueued or captured, never on graph replay. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry.cuh"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static cu_bias_copy *g_bias; /* sorted by f32 pointer */
static int g_n_bias, g_cap_bias;
static cu_allocation *g_allocs;
static int g_n_allocs, g_cap_allocs;

static int bias_find(const void *f32) { /* first index with key >= f32 */
    int lo = 0, hi = g_n_bias;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if ((uintptr_t)g_bias[mid].f32 < (uintptr_t)f32) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int cu_bias_register(const void *f32, const void *act) {
    pthread_mutex_lock(&g_mu);
    int ok = 1, i = bias_find(f32);
    if (i < g_n_bias && g_bias[i].f32 == f32) {
        g_bias[i].act = act;
    } else {
        if (g_n_bias == g_cap_bias) {
            int cap = g_cap_bias ? 2 * g_cap_bias : 256;
            void *p = realloc(g_bias, (size_t)cap * sizeof *g_bias);
            if (p) g_bias = (cu_bias_copy *)p, g_cap_bias = cap;
            else ok = 0;
        }
        if (ok) {
            memmove(g_bias + i + 1, g_bias + i, (size_t)(g_n_bias - i) * sizeof *g_bias);
            g_bias[i].f32 = f32;
            g_bias[i].act = act;
            g_n_bias++;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}

const void *cu_bias_lookup(const void *f32) {
    pthread_mutex_lock(&g_mu);
    int i = bias_find(f32);
    const void *act = i < g_n_bias && g_bias[i].f32 == f32 ? g_bias[i].act : NULL;
    pthread_mutex_unlock(&g_mu);
    return act;
}

int cu_alloc_track(void *p, size_t bytes) {
    pthread_mutex_lock(&g_mu);
    int ok = 1;
    if (g_n_allocs == g_cap_allocs) {
        int cap = g_cap_allocs ? 2 * g_cap_allocs : 64;
        void *q = realloc(g_allocs, (size_t)cap * sizeof *g_allocs);
        if (q) g_allocs = (cu_allocation *)q, g_cap_allocs = cap;
        else ok = 0;
    }
    if (ok) {
        g_allocs[g_n_allocs].p = p;
        g_allocs[g_n_allocs++].bytes = bytes;
    }
    pthread_mutex_unlock(&g_mu);
    return ok;
}

void cu_alloc_untrack(const void *p) {
    pthread_mutex_lock(&g_mu);
    for (int k = 0; k < g_n_allocs; k++)
        if (g_allocs[k].p == p) {
            int i = bias_find(p), j = i; /* the bias copies inside the allocation */
            while (j < g_n_bias && (uintptr_t)g_bias[j].f32 < (uintptr_t)p + g_allocs[k].bytes) j++;
            memmove(g_bias + i, g_bias + j, (size_t)(g_n_bias - j) * sizeof *g_bias);
            g_n_bias -= j - i;
            g_allocs[k] = g_allocs[--g_n_allocs];
            break;
        }
    pthread_mutex_unlock(&g_mu);
}
