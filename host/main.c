/* host/main.c — the flowturbo command-line tool: dispatches to the commands
 * (host/cmd_*.c). Exit status: 0 success, 1 failure, 2 bad usage,
 * 130 interrupted. */
#include <stdio.h>
#include <string.h>

#include "../engine/flowturbo.h"
#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"generate", cmd_generate, "sample class-conditional images (PNG, JPEG, WebP) and/or latents (.npy)"},
    {"decode", cmd_decode, "decode .npy latents to images with the VAE"},
    {"sample-fid", cmd_sample_fid, "resumable, shardable sampling into an ADM-evaluator .npz (arr_0)"},
    {"merge-npz", cmd_merge_npz, "join sample-fid shards into one .npz"},
    {"info", cmd_info, "show the metadata and tensors of an engine safetensors file"},
    {"serve", cmd_serve, "live demo page and JSON HTTP API (models loaded once)"},
};
#define N_COMMANDS (int)(sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *out) {
    fprintf(out,
            "Usage: flowturbo <command> [options]\n"
            "\n"
            "FlowTurbo inference: SiT/DiT velocity predictor + velocity refiner + SD-VAE decoder.\n"
            "\n"
            "Commands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(out,
            "\n"
            "Options:\n"
            "  -h, --help     show this help (flowturbo <command> --help: the command's options)\n"
            "  --version      print the version\n"
            "\n"
            "Examples:\n"
            "  flowturbo generate -m sit-xl-2.safetensors --refiner refiner.safetensors --vae vae.safetensors \\\n"
            "      --class 207 -s 0 -o dog.png\n"
            "  flowturbo generate --class Trouser,Bag -n 4 -o garment_%%d.jpg     (the embedded Fashion-MNIST model)\n");
}

int main(int argc, char **argv) {
    ft_reexec_with_passive_threads(argv); /* idle OpenMP threads sleep instead of spinning (busy machines) */
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        if (strcmp(cmd, "help") == 0 && argc > 2) {
            for (int i = 0; i < N_COMMANDS; i++)
                if (strcmp(argv[2], COMMANDS[i].name) == 0) {
                    char *args[] = {argv[2], (char *)"--help", NULL};
                    return COMMANDS[i].run(2, args);
                }
        }
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        printf("flowturbo %s\n", ft_version());
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, COMMANDS[i].name) == 0) return COMMANDS[i].run(argc - 1, argv + 1);
    if (cmd[0] == '-') fprintf(stderr, "flowturbo: unknown option '%s' (give a command first)\n", cmd);
    else fprintf(stderr, "flowturbo: unknown command '%s'\n", cmd);
    fprintf(stderr, "Commands:");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(stderr, " %s", COMMANDS[i].name);
    fprintf(stderr, "\nTry 'flowturbo --help'.\n");
    return EXIT_USAGE;
}
