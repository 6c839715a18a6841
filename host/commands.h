/* host/commands.h — the CLI's commands. Each takes argv with argv[0] = the
 * command name and returns the process exit status: 0 success, 1 failure
 * at run time, 2 bad usage, 130 interrupted. */
#ifndef HOST_COMMANDS_H
#define HOST_COMMANDS_H

int cmd_generate(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_sample_fid(int argc, char **argv);
int cmd_merge_npz(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

#endif
