/*
 * host/output_names.h — output file names from an sd-cli style pattern.
 *
 * A pattern may hold one printf integer conversion (%d, %03d, %5d, %i) that
 * becomes the image index; "%%" is a literal '%'. Without a conversion and
 * more than one image, "_<index>" goes before the extension
 * (output.png -> output_0.png, output_1.png, ...).
 */
#ifndef HOST_OUTPUT_NAMES_H
#define HOST_OUTPUT_NAMES_H

#include <stddef.h>

#include "errmsg.h"

/* Checks the pattern; *has_index tells whether it holds a conversion. */
int output_pattern_check(const char *pattern, int *has_index, hx_err *err);
/* Checks before any work that the files of the pattern can be created (their directory exists and is writable, the
 * name is not a directory); what names the option in the message. */
int output_pattern_writable(const char *what, const char *pattern, hx_err *err);
/* The file name of image index of count. */
int output_name(const char *pattern, int index, int count, char *out, size_t cap, hx_err *err);

#endif
