/* The one place the PostgreSQL layer runs the classifier: a batch of texts (gcpg_classify) and
 * the one-text path shared by classify_hate, classify_hate_scores and the trigger. */
#include "gemmaclf_pg.h"

#include <math.h>

typedef struct classify_call {
    gc_session *sess;
    int n;
    const char *const *texts;
    const size_t *lens;
    float *probs;
    int *labels;
    gc_err err;
} classify_call;

static gc_status run_classify(void *arg)
{
    classify_call *a = arg;

    return gc_classify(a->sess, a->n, a->texts, a->lens, a->probs, a->labels, &a->err);
}

/* gc_classify on a session, interruptible (gcpg_run_interruptible): the one call through which
 * both a backend and the inference worker run the model. */
gc_status gcpg_session_classify(gc_session *sess, int n, const char *const *texts,
                                const size_t *lens, float *probs, int *labels, gc_err *err)
{
    classify_call a = {.sess = sess, .n = n, .texts = texts, .lens = lens, .probs = probs,
                       .labels = labels};
    gc_status st = gcpg_run_interruptible(run_classify, &a);

    *err = a.err;
    return st;
}

/* A model with broken weights (NaN/Inf) gives no label and no scores: the same ERROR from every
 * caller, whether the core noticed (GC_ENUMERIC) or the scores reached us (checked here as well,
 * so that no NaN becomes a label or breaks the jsonb of the scores). */
void gcpg_nonfinite_error(const char *detail)
{
    ereport(ERROR, (errcode(gcpg_sqlstate(GC_ENUMERIC)),
                    errmsg("gemmaclf: the model computed a non-finite score (NaN or infinity)"),
                    errdetail("%s", detail), gcpg_status_hint(GC_ENUMERIC)));
}

static void check_finite(const gc_classifier *c, int n, const float *probs)
{
    int n_labels = gc_classifier_n_labels(c);

    for (int i = 0; i < n; i++)
        for (int l = 0; l < n_labels; l++)
            if (!isfinite(probs[(size_t)i * n_labels + l]))
                gcpg_nonfinite_error(psprintf("text %d of %d: the probability of \"%s\" is %s",
                                              i + 1, n, gc_classifier_label(c, l),
                                              isnan(probs[(size_t)i * n_labels + l]) ? "NaN"
                                                                                     : "infinite"));
}

static const char *served_by = NULL;

const char *gcpg_served_by(void)
{
    return served_by;
}

/* Through the inference worker when it serves m's model (inference_client.c: which calls it
 * serves), else here, in this backend's own session. */
void gcpg_classify(gcpg_model *m, int n, const char *const *texts, const size_t *lens,
                   float *probs, int *labels)
{
    bool cpu_only;
    gc_session *sess;
    gc_err err = {0};
    gc_status st;

    if (gcpg_inference_classify(m, n, texts, lens, probs, labels, &cpu_only)) {
        served_by = "inference worker";
        check_finite(gcpg_classifier(m), n, probs);
        return;
    }
    /* the worker exited under gemmaclf.device = auto: our own CPU, not a CUDA context each */
    sess = cpu_only ? gcpg_session_for(m, GC_DEVICE_CPU) : gcpg_session(m);
    st = gcpg_session_classify(sess, n, texts, lens, probs, labels, &err);
    served_by = "backend";

    if (st == GC_ENUMERIC)
        gcpg_nonfinite_error(err.msg);
    if (st != GC_OK)
        ereport(ERROR, (errcode(gcpg_sqlstate(st)), errmsg("gemmaclf: %s", err.msg),
                        gcpg_status_hint(st)));
    check_finite(gcpg_classifier(m), n, probs);
}

text *gcpg_classify_text(text *t, Datum *scores)
{
    gcpg_model *m = gcpg_acquire();
    const gc_classifier *c = gcpg_classifier(m);
    size_t len;
    const char *s = gcpg_text_utf8(t, &len);
    float *probs = palloc(sizeof(float) * gc_classifier_n_labels(c));
    int label;
    text *out;

    gcpg_classify(m, 1, &s, &len, probs, &label);
    out = gcpg_label_text(gc_classifier_label(c, label));
    if (scores)
        *scores = gcpg_scores_jsonb(c, probs, label);
    pfree(probs);
    gcpg_release(m);
    return out;
}
