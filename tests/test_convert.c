/* tests/test_convert.c — weights_tool/convert.py on every checkpoint layout,
 * run through tests/convert_check.py (Debian python3-torch; SKIP without it). */
#include <stdio.h>

#include "test.h"

static test_result convert_case(const char *name) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/convert_check.py %s > %s/convert_%s.log 2>&1", name,
             test_tmpdir(), name);
    int rc = test_run(cmd);
    if (rc == 77) SKIP_BECAUSE("PyTorch is not installed for /usr/bin/python3 (apt-get install python3-torch)");
    if (rc == 0) return PASS;
    char log[600];
    snprintf(log, sizeof log, "%s/convert_%s.log", test_tmpdir(), name);
    FILE *f = fopen(log, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) test_note("%s", line);
    if (f) fclose(f);
    if (rc == 127 || rc < 0) SKIP_BECAUSE("/usr/bin/python3 is not available");
    return FAIL;
}

TEST(convert_sit_bare_state_dict) { return convert_case("sit_bare"); }
TEST(convert_sit_training_checkpoint_ema) { return convert_case("sit_train"); }
TEST(convert_refiner_training_checkpoint_model) { return convert_case("refiner_train"); }
TEST(convert_dit_bare_half_precision) { return convert_case("dit_bare"); }
TEST(convert_vae_diffusers) { return convert_case("vae_diffusers"); }
TEST(convert_vae_diffusers_deprecated_names) { return convert_case("vae_diffusers_deprecated"); }
TEST(convert_vae_ldm_checkpoint) { return convert_case("vae_ldm"); }
TEST(convert_vae_ldm_first_stage_prefix) { return convert_case("vae_ldm_prefixed"); }
TEST(convert_authors_conformance_checkpoints) { return convert_case("conformance"); }
TEST(convert_errors_are_clear) { return convert_case("errors"); }
TEST(convert_random_models) { return convert_case("random"); }
TEST(convert_inspect) { return convert_case("inspect"); }
