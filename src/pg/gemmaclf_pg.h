/* Internal interface of the PostgreSQL layer: one process-wide classifier (malloc'd by the core,
 * owned by module.c, alive for the process), per-call work in PostgreSQL memory contexts. */
#ifndef GEMMACLF_PG_H
#define GEMMACLF_PG_H

#include "postgres.h"
#include "pg_compat.h"

#include "classifier.h"

extern int gemmaclf_batch_size;

/* The loaded classifier for the current gemmaclf.model_path (loads or reloads it; ERROR on
 * failure, with a HINT naming gemmaclf.model_path). */
const gc_classifier *gcpg_classifier(void);

/* Text of any server encoding as UTF-8 bytes (palloc'd or pointing into t). */
const char *gcpg_text_utf8(text *t, size_t *len);

/* A label (UTF-8) as a text datum in the server encoding. */
text *gcpg_label_text(const char *label);

/* Classifies n UTF-8 texts; probs [n][n_labels], labels [n]. Honours query cancel and
 * statement_timeout; converts core errors to ereport(ERROR). */
void gcpg_classify(int n, const char *const *texts, const size_t *lens, float *probs, int *labels);

/* {"label": ..., "scores": {...}} for one result, as a jsonb datum. */
Datum gcpg_scores_jsonb(const gc_classifier *c, const float *probs, int label);

/* Base type of a column, for argument checks: text-like source and label columns, jsonb scores. */
bool gcpg_is_text_type(Oid typid);

#endif
