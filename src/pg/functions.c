/* classify_hate(text), classify_hate(text[]), classify_hate_scores(text). */
#include "gemmaclf_pg.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"

PG_FUNCTION_INFO_V1(classify_hate);
Datum classify_hate(PG_FUNCTION_ARGS)
{
    PG_RETURN_TEXT_P(gcpg_classify_text(PG_GETARG_TEXT_PP(0), NULL));
}

PG_FUNCTION_INFO_V1(classify_hate_scores);
Datum classify_hate_scores(PG_FUNCTION_ARGS)
{
    Datum scores;

    (void)gcpg_classify_text(PG_GETARG_TEXT_PP(0), &scores);
    PG_RETURN_DATUM(scores);
}

/* Labels of the non-NULL texts, one batch per gemmaclf.batch_size texts; nulls[i] marks the
 * texts left out, out[i] gets the others' labels. */
static void label_elements(gcpg_model *m, int n, const Datum *elems, const bool *nulls,
                           Datum *out)
{
    const gc_classifier *c = gcpg_classifier(m);
    int n_labels = gc_classifier_n_labels(c), chunk = Max(gemmaclf_batch_size, 1), k = 0;
    const char **texts = palloc(sizeof(char *) * n);
    size_t *lens = palloc(sizeof(size_t) * n);
    int *idx = palloc(sizeof(int) * n), *labels = palloc(sizeof(int) * n);
    float *probs = palloc(sizeof(float) * (size_t)n_labels * Min(chunk, n));
    /* One text datum per label, shared by every element that gets it. */
    text **label_text = palloc(sizeof(text *) * n_labels);

    for (int l = 0; l < n_labels; l++)
        label_text[l] = gcpg_label_text(gc_classifier_label(c, l));
    for (int i = 0; i < n; i++)
        if (!nulls[i]) {
            texts[k] = gcpg_text_utf8(DatumGetTextPP(elems[i]), &lens[k]);
            idx[k++] = i;
        }
    for (int i = 0; i < k; i += chunk) {
        CHECK_FOR_INTERRUPTS();
        gcpg_classify(m, Min(chunk, k - i), texts + i, lens + i, probs, labels + i);
    }
    for (int i = 0; i < k; i++)
        out[idx[i]] = PointerGetDatum(label_text[labels[i]]);
}

/* NULL elements stay NULL; dimensions and lower bounds are kept. */
PG_FUNCTION_INFO_V1(classify_hate_array);
Datum classify_hate_array(PG_FUNCTION_ARGS)
{
    ArrayType *arr = PG_GETARG_ARRAYTYPE_P(0);
    gcpg_model *m = gcpg_acquire();
    Datum *elems, *out;
    bool *nulls;
    int n;

    deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
    if (n == 0) {
        gcpg_release(m);
        PG_RETURN_ARRAYTYPE_P(arr);
    }
    out = palloc0(sizeof(Datum) * n);
    label_elements(m, n, elems, nulls, out);
    gcpg_release(m);
    PG_RETURN_ARRAYTYPE_P(construct_md_array(out, nulls, ARR_NDIM(arr), ARR_DIMS(arr),
                                             ARR_LBOUND(arr), TEXTOID, -1, false, TYPALIGN_INT));
}
