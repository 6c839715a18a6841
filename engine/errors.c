/* engine/errors.c — status strings and error formatting. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>

ft_status ft_fail(ft_err *err, ft_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *ft_status_string(ft_status status) {
    switch (status) {
    case FT_OK: return "ok";
    case FT_ERR_INVALID_ARGUMENT: return "invalid argument";
    case FT_ERR_IO: return "i/o error";
    case FT_ERR_FORMAT: return "malformed or mismatched file";
    case FT_ERR_OUT_OF_MEMORY: return "out of memory";
    case FT_ERR_UNSUPPORTED: return "unsupported";
    case FT_ERR_NOT_LOADED: return "model not loaded";
    case FT_ERR_BACKEND: return "backend error";
    case FT_ERR_CANCELLED: return "cancelled";
    case FT_ERR_INTERNAL: return "internal error";
    case FT_ERR_BUSY: return "busy: a submitted job is running";
    case FT_ERR_NUMERIC: return "non-finite result";
    }
    return "unknown status";
}

const char *ft_version(void) {
#define FT_STR2(x) #x
#define FT_STR(x) FT_STR2(x)
    return FT_STR(FT_VERSION_MAJOR) "." FT_STR(FT_VERSION_MINOR) "." FT_STR(FT_VERSION_PATCH);
}
