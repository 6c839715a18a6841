/* tests/fuzz/fuzz_spool_config.c — the sample-fid spool's configuration
 * comparison (host/fid_spool.h): two "key: value" texts, NUL-separated. */
#include <stdlib.h>
#include <string.h>

#include "../../host/fid_spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 2);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = text[size + 1] = 0;
    const char *old_cfg = text, *new_cfg = text + strlen(text) + 1;
    char msg[2048];
    fid_config_diff(old_cfg, new_cfg, msg, sizeof msg);
    if (!memchr(msg, 0, sizeof msg)) abort();
    fid_config_diff(old_cfg, old_cfg, msg, sizeof msg);
    if (msg[0]) abort(); /* a configuration equals itself */
    free(text);
    return 0;
}
