/*
 * train_cli.h - `iclplay train ...`: the small C training driver, for quick
 * runs, tests and benchmarks without Lua. Prints one progress line per
 * interval and can save a checkpoint at the end.
 */
#ifndef ICL_TRAIN_CLI_H
#define ICL_TRAIN_CLI_H

/* argv[0] is "train". Returns a process exit status (0 ok, 1 failure,
 * 2 usage error); never exits itself. */
int train_cli_main(int argc, char **argv);
void train_cli_usage(void);

#endif
