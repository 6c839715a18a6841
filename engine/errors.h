/* engine/errors.h — status + message plumbing shared by the engine's modules. */
#ifndef FT_ERRORS_H
#define FT_ERRORS_H

#include <stddef.h>

#include "flowturbo.h"

#define FT_ERR_MAX 1024

typedef struct {
    char msg[FT_ERR_MAX];
} ft_err;

/* Formats the message into err (when non-NULL) and returns status. */
ft_status ft_fail(ft_err *err, ft_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
