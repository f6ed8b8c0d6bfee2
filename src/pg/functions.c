/* classify_hate(text), classify_hate(text[]), classify_hate_scores(text). */
#include "gemmaclf_pg.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(classify_hate);
Datum classify_hate(PG_FUNCTION_ARGS)
{
    const gc_classifier *c = gcpg_classifier();
    size_t len;
    const char *s = gcpg_text_utf8(PG_GETARG_TEXT_PP(0), &len);
    float *probs = palloc(sizeof(float) * gc_classifier_n_labels(c));
    int label;

    gcpg_classify(1, &s, &len, probs, &label);
    PG_RETURN_TEXT_P(gcpg_label_text(gc_classifier_label(c, label)));
}

PG_FUNCTION_INFO_V1(classify_hate_scores);
Datum classify_hate_scores(PG_FUNCTION_ARGS)
{
    const gc_classifier *c = gcpg_classifier();
    size_t len;
    const char *s = gcpg_text_utf8(PG_GETARG_TEXT_PP(0), &len);
    float *probs = palloc(sizeof(float) * gc_classifier_n_labels(c));
    int label;

    gcpg_classify(1, &s, &len, probs, &label);
    PG_RETURN_DATUM(gcpg_scores_jsonb(c, probs, label));
}

/* One batch per gemmaclf.batch_size texts; NULL elements stay NULL; dimensions are kept. */
PG_FUNCTION_INFO_V1(classify_hate_array);
Datum classify_hate_array(PG_FUNCTION_ARGS)
{
    ArrayType *arr = PG_GETARG_ARRAYTYPE_P(0);
    const gc_classifier *c = gcpg_classifier();
    int L = gc_classifier_n_labels(c);
    Datum *elems, *out;
    bool *nulls;
    int n, m = 0, chunk = Max(gemmaclf_batch_size, 1);
    const char **texts;
    size_t *lens;
    int *idx, *labels;
    float *probs;
    text **label_text;

    deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
    if (n == 0)
        PG_RETURN_ARRAYTYPE_P(arr);
    texts = palloc(sizeof(char *) * n);
    lens = palloc(sizeof(size_t) * n);
    idx = palloc(sizeof(int) * n);
    labels = palloc(sizeof(int) * n);
    out = palloc0(sizeof(Datum) * n);
    probs = palloc(sizeof(float) * (size_t)L * Min(chunk, n));
    label_text = palloc(sizeof(text *) * L);
    for (int l = 0; l < L; l++)
        label_text[l] = gcpg_label_text(gc_classifier_label(c, l));
    for (int i = 0; i < n; i++)
        if (!nulls[i]) {
            texts[m] = gcpg_text_utf8(DatumGetTextPP(elems[i]), &lens[m]);
            idx[m++] = i;
        }
    for (int i = 0; i < m; i += chunk) {
        int k = Min(chunk, m - i);

        CHECK_FOR_INTERRUPTS();
        gcpg_classify(k, texts + i, lens + i, probs, labels + i);
    }
    for (int i = 0; i < m; i++)
        out[idx[i]] = PointerGetDatum(label_text[labels[i]]);
    PG_RETURN_ARRAYTYPE_P(construct_md_array(out, nulls, ARR_NDIM(arr), ARR_DIMS(arr),
                                             ARR_LBOUND(arr), TEXTOID, -1, false, TYPALIGN_INT));
}
