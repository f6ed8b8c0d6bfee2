/* The model's content fingerprint: one SHA-256 over the files that decide its labels, so that
 * nodes of a cluster (or two machines) can check that they serve the same model. Computed once
 * per load. Reproducible with coreutils in the model directory:
 *     sha256sum FILE... | sha256sum
 * over the files present among config.json, gemmaclf.json, model.safetensors or
 * model.safetensors.index.json and its shards, ngram_head.safetensors, tokenizer.json,
 * tokenizer_config.json, sorted
 * by name (C locale): the fingerprint is the SHA-256 of the `sha256sum` lines
 * "<64 hex>  <name>\n" of those files in that order. */
#ifndef GC_FINGERPRINT_H
#define GC_FINGERPRINT_H

#include "common/error.h"

/* names: n file names relative to dir (weights included; absent optional files left out by the
 * caller); sorted here. Writes 64 hex digits and a NUL to out. A file that is missing, not a
 * regular file, or unreadable is an error naming it. */
gc_status gc_fingerprint_files(const char *dir, const char **names, int n, char out[65],
                               gc_err *e);

#endif
