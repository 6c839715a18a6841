/* host/errmsg.h — the error message carried by every host I/O helper.
 * Helpers return 0 on success and -1 on failure with the reason in err. */
#ifndef HOST_ERRMSG_H
#define HOST_ERRMSG_H

#include <stddef.h>

typedef struct {
    char msg[1024];
} hx_err;

/* Formats the message into err (when non-NULL); always returns -1. */
int hx_fail(hx_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
