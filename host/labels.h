/*
 * host/labels.h — class labels: --class lists and the deterministic labels
 * of FID sampling.
 *
 * draw_label(seed, k, n) is the label of global image k: a function of
 * (seed, k) only, so any split of the work (batches, shards, resumes) gives
 * the same labels. With mix(x) the SplitMix64 finaliser
 *   (x += 0x9E3779B97F4A7C15; x = (x ^ x>>30) * 0xBF58476D1CE4E5B9;
 *    x = (x ^ x>>27) * 0x94D049BB133111EB; x ^= x>>31)
 * draws are z_j = mix(mix(mix(seed ^ 0x4C4142454C53) + k) + j), j = 0, 1, ...
 * and the label is z mod n for the first z_j >= 2^64 mod n (rejection, so
 * every class is exactly equally likely).
 */
#ifndef HOST_LABELS_H
#define HOST_LABELS_H

#include <stdint.h>

#include "errmsg.h"

#define CLASS_LIST_MAX 100000

struct ft_context;

typedef struct {
    int random;   /* "random" */
    int n;
    int *ids;     /* malloc'd n ids; -1 for a name until class_list_resolve */
    char **names; /* malloc'd n: the class name given at i, or NULL for an id */
    char *text;   /* malloc'd copy of the list the names point into */
} class_list;

/* "3", "1,2,7", "Trouser, bag, 3" or "random": comma-separated ids (integers >= 0) and class names (spaces around
 * an entry are ignored). Names are only checked by class_list_resolve. */
int class_list_parse(const char *text, class_list *out, hx_err *err);
/* Turns names into ids with the loaded predictor's class names (ft_class_id: case-insensitive) and checks every
 * id against its number of classes; a failure message names model and lists its classes. */
int class_list_resolve(class_list *c, const struct ft_context *ctx, const char *model, hx_err *err);
void class_list_free(class_list *c);

uint64_t splitmix64_mix(uint64_t x);
int draw_label(uint64_t seed, uint64_t index, int num_classes);

#endif
