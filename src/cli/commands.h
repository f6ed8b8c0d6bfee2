/* bin/gemmaclf subcommands: each lives in its own cmd_<name>.c and defines one gc_command. */
#ifndef GC_CLI_COMMANDS_H
#define GC_CLI_COMMANDS_H

typedef struct gc_command {
    const char *name;
    const char *usage; /* one line: arguments and options */
    const char *help;  /* one line: what it does */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name; returns exit code */
} gc_command;

/* Weak so that the binary links while a command is not built (e.g. a trimmed build). */
extern const gc_command gc_cmd_logits __attribute__((weak));
extern const gc_command gc_cmd_tokenize __attribute__((weak));
extern const gc_command gc_cmd_classify __attribute__((weak));
extern const gc_command gc_cmd_generate __attribute__((weak));
extern const gc_command gc_cmd_info __attribute__((weak));

#endif
