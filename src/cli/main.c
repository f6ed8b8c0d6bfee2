/* bin/gemmaclf: the command-line face of the core library. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const gc_command *commands(int i)
{
    const gc_command *all[] = {&gc_cmd_logits, &gc_cmd_tokenize, &gc_cmd_classify,
                               &gc_cmd_generate, &gc_cmd_info};
    return i < (int)(sizeof all / sizeof all[0]) ? all[i] : NULL;
}

#define N_COMMANDS 5

static void usage(FILE *f)
{
    fprintf(f, "usage: gemmaclf COMMAND [ARGS]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) {
        const gc_command *c = commands(i);
        if (c)
            fprintf(f, "  %s %s\n      %s\n", c->name, c->usage, c->help);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        const gc_command *c = commands(i);
        if (c && !strcmp(c->name, argv[1]))
            return c->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "gemmaclf: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
