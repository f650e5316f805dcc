/*
 * main.c - iclplay's entry point: parse the first argument, pick the mode.
 * Only this file may end the process.
 */
#include <stdio.h>
#include <string.h>

#include "train/train_cli.h"

#define ICLPLAY_VERSION "0.1.0"

static void usage(void) {
    printf("iclplay %s - an interactive terminal playground for in-context learning\n\n"
           "usage:\n"
           "  iclplay train [options]   train a model with the C driver (iclplay train --help)\n"
           "  iclplay --version\n"
           "  iclplay --help\n",
           ICLPLAY_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage();
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("iclplay %s\n", ICLPLAY_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "train")) return train_cli_main(argc - 1, argv + 1);
    fprintf(stderr, "iclplay: unknown mode '%s' (try iclplay --help)\n", argv[1]);
    return 2;
}
