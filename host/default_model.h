/* host/default_model.h — the models embedded in the CLI: a class-conditional
 * SiT and its FlowTurbo velocity refiner trained on Fashion-MNIST (32x32
 * pixels, 10 classes; weights_tool/fashion/ trains them). `flowturbo
 * generate` uses them when no -m/--model is given. */
#ifndef HOST_DEFAULT_MODEL_H
#define HOST_DEFAULT_MODEL_H

#include <stddef.h>

#include "../engine/flowturbo.h"

#define DEFAULT_MODEL_NAME "embedded:fashion_sit"
#define DEFAULT_REFINER_NAME "embedded:fashion_refiner"

/* The sampler `flowturbo generate` uses for the embedded model when no
 * --sampler is given: the configuration with the best measured quality per
 * millisecond on it (issue 12; README "The embedded model", bench/RESULTS.md). */
#define DEFAULT_MODEL_SAMPLER "H1P5R3"

/* The safetensors image of the embedded predictor / refiner. */
const void *default_model_data(ft_role role, size_t *size);

#endif
