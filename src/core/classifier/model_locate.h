/* Where the bundled default model lives: a folder of models (the source tree's models/, the
 * installed share/postgresql/extension/gemmaclf_models/), each model in its own subfolder. */
#ifndef GC_MODEL_LOCATE_H
#define GC_MODEL_LOCATE_H

#include <stddef.h>

/* Writes root/<name> to out for the model subfolder of root to use by default: the one named in
 * root/DEFAULT (one line) when that file exists, else the first subfolder (by name) that holds a
 * config.json. Returns 1 when found, 0 otherwise. */
int gc_find_model_in(const char *root, char *out, size_t cap);

#endif
