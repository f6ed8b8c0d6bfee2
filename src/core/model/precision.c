#include "model/precision.h"

#include <string.h>

static const char *const names[] = {"f32", "bf16", "int8"};

const char *gc_precision_name(gc_precision p)
{
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

int gc_precision_parse(const char *s, gc_precision *out)
{
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s && !strcmp(s, names[i])) {
            *out = (gc_precision)i;
            return 0;
        }
    return -1;
}
