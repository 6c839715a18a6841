/* host/default_model.h — the names of the models embedded in the library
 * (ft_load_embedded): a class-conditional SiT and its FlowTurbo velocity
 * refiner trained on Fashion-MNIST (32x32 pixels, 10 classes;
 * weights_tool/fashion/ trains them). `flowturbo generate` and `flowturbo
 * serve` use them when no -m/--model is given. */
#ifndef HOST_DEFAULT_MODEL_H
#define HOST_DEFAULT_MODEL_H

#define DEFAULT_MODEL_NAME "embedded:fashion_sit"
#define DEFAULT_REFINER_NAME "embedded:fashion_refiner"

#endif
