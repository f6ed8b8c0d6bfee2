/* gemmaclf module state: GUCs, loading (in the postmaster with shared_preload_libraries, else
 * lazily on first use), text conversion, and the one place that calls the core classifier. */
#include "gemmaclf_pg.h"

#include <errno.h>
#include <sys/stat.h>

#include "access/parallel.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "model/cuda_plugin.h"
#include "classifier/model_locate.h"

PG_MODULE_MAGIC;

void _PG_init(void);

static char *gemmaclf_model_path = NULL;
static int gemmaclf_device = GC_DEVICE_AUTO;
static int gemmaclf_threads = 1;
static int gemmaclf_max_input_tokens = GC_DEFAULT_MAX_INPUT_TOKENS;
int gemmaclf_batch_size = GC_DEFAULT_BATCH_SIZE;

static const struct config_enum_entry device_options[] = {
    {"auto", GC_DEVICE_AUTO, false},
    {"cpu", GC_DEVICE_CPU, false},
    {"cuda", GC_DEVICE_CUDA, false},
    {NULL, 0, false}};

/* Process-lifetime state, malloc'd by the core. */
static gc_classifier *clf = NULL;
static char clf_path[MAXPGPATH];  /* resolved directory clf was loaded from */
static char clf_setting[MAXPGPATH]; /* gemmaclf.model_path value it was loaded for */
static bool clf_preloaded = false;
static gc_session *sess = NULL;
static int sess_threads = -1, sess_device = -1;

#define MODEL_HINT \
    "Set gemmaclf.model_path (superuser) to a directory holding config.json, model.safetensors " \
    "and tokenizer.json, or leave it empty to use the model installed with the extension."

static int pg_interrupt(void *arg)
{
    (void)arg;
    return InterruptPending && INTERRUPTS_CAN_BE_PROCESSED();
}

static int sqlstate_of(gc_status st)
{
    switch (st) {
    case GC_EINVAL: return ERRCODE_INVALID_PARAMETER_VALUE;
    case GC_ENOMEM: return ERRCODE_OUT_OF_MEMORY;
    case GC_ECANCELED: return ERRCODE_QUERY_CANCELED;
    case GC_EDEVICE: return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
    case GC_EIO: return ERRCODE_UNDEFINED_FILE;
    default: return ERRCODE_CONFIG_FILE_ERROR;
    }
}

/* The bundled model: $sharedir/extension/gemmaclf_models/<default>. */
static bool bundled_model(char *out, size_t cap)
{
    char share[MAXPGPATH], root[MAXPGPATH + 32];

    get_share_path(my_exec_path, share);
    snprintf(root, sizeof root, "%s/extension/gemmaclf_models", share);
    return gc_find_model_in(root, out, cap) != 0;
}

/* Resolves the setting to a directory; on failure fills why and returns false. */
static bool resolve_model_dir(const char *setting, char *out, size_t cap, const char **why)
{
    struct stat st;
    char cfg[MAXPGPATH + 16];

    if (!setting || !*setting) {
        if (bundled_model(out, cap))
            return true;
        *why = "no model is installed with the extension and gemmaclf.model_path is empty";
        return false;
    }
    snprintf(out, cap, "%s", setting);
    if (!is_absolute_path(out)) {
        *why = "gemmaclf.model_path must be an absolute path";
        return false;
    }
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *why = "the model directory does not exist";
        return false;
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    if (stat(cfg, &st) != 0) {
        *why = "the model directory holds no config.json";
        return false;
    }
    return true;
}

static void drop_session(void)
{
    gc_session_free(sess);
    sess = NULL;
    sess_threads = sess_device = -1;
}

/* Loads the classifier for the current setting; at elevel < ERROR failures are only logged. */
static bool load_classifier(int elevel)
{
    const char *setting = gemmaclf_model_path ? gemmaclf_model_path : "";
    const char *why = NULL;
    char dir[MAXPGPATH], cache[MAXPGPATH];
    gc_err e = {0};
    gc_classifier_opts opts = {0};
    gc_classifier *c = NULL;
    gc_status st;

    if (!resolve_model_dir(setting, dir, sizeof dir, &why)) {
        ereport(elevel, (errcode(ERRCODE_UNDEFINED_FILE),
                         errmsg("could not load the gemmaclf model from \"%s\": %s",
                                setting, why),
                         errhint(MODEL_HINT)));
        return false;
    }
    /* BF16/F16 weights are converted to F32 once, into $PGDATA/gemmaclf_cache, and mapped
     * from there by every backend (without the directory: converted in each backend's memory). */
    snprintf(cache, sizeof cache, "%s/gemmaclf_cache", DataDir);
    if (MakePGDirectory(cache) == 0 || errno == EEXIST)
        opts.cache_dir = cache;
    else
        ereport(LOG, (errcode_for_file_access(),
                      errmsg("gemmaclf: could not create cache directory \"%s\": %m", cache)));
    drop_session();
    gc_classifier_free(clf);
    clf = NULL;
    clf_preloaded = false;
    st = gc_classifier_open(dir, &opts, &c, &e);
    if (st != GC_OK) {
        ereport(elevel, (errcode(sqlstate_of(st)),
                         errmsg("could not load the gemmaclf model from \"%s\"", dir),
                         errdetail("%s", e.msg), errhint(MODEL_HINT)));
        return false;
    }
    clf = c;
    strlcpy(clf_path, dir, sizeof clf_path);
    strlcpy(clf_setting, setting, sizeof clf_setting);
    return true;
}

const gc_classifier *gcpg_classifier(void)
{
    const char *setting = gemmaclf_model_path ? gemmaclf_model_path : "";

    if (clf == NULL || strcmp(setting, clf_setting) != 0)
        load_classifier(ERROR);
    return clf;
}

/* The device a session must be created for: AUTO is CPU when there is no CUDA plugin at all
 * (dlopen only, after fork), so a session preloaded for the CPU can serve it. */
static int wanted_device(void)
{
    if (gemmaclf_device == GC_DEVICE_AUTO && gc_cuda_load(NULL) == NULL)
        return GC_DEVICE_CPU;
    return gemmaclf_device;
}

static gc_status new_session(const gc_classifier *c, int threads, int device, gc_err *e)
{
    gc_session_opts o = {.ctx = {.threads = threads, .device = (gc_device)device,
                                 .interrupt = pg_interrupt},
                         .batch_size = gemmaclf_batch_size,
                         .max_input_tokens = gemmaclf_max_input_tokens};
    gc_status st = gc_session_new(c, &o, &sess, e);

    if (st == GC_OK) {
        sess_threads = threads;
        sess_device = device;
    }
    return st;
}

static gc_session *session(void)
{
    const gc_classifier *c = gcpg_classifier();
    /* Parallel workers run beside their leader: one BLAS thread each, not a pool each. */
    int threads = IsParallelWorker() ? 1 : gemmaclf_threads;
    int device = wanted_device();
    gc_err e = {0};
    gc_status st;

    if (sess && (sess_threads != threads || sess_device != device))
        drop_session();
    if (!sess) {
        st = new_session(c, threads, device, &e);
        if (st != GC_OK)
            ereport(ERROR, (errcode(sqlstate_of(st)),
                            errmsg("could not start a gemmaclf session: %s", e.msg),
                            st == GC_EDEVICE ? errhint("Set gemmaclf.device = 'cpu'.") : 0));
    }
    gc_session_set_limits(sess, gemmaclf_batch_size, gemmaclf_max_input_tokens);
    return sess;
}

void gcpg_classify(int n, const char *const *texts, const size_t *lens, float *probs, int *labels)
{
    gc_session *s = session();
    gc_err e = {0};
    gc_status st;
    int tries = 0;

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        st = gc_classify(s, n, texts, lens, probs, labels, &e);
        if (st != GC_ECANCELED)
            break;
        /* An interrupt is pending: let PostgreSQL handle it (cancel/timeout throw here);
         * interrupts that do not end the query leave us to run the batch again. */
        CHECK_FOR_INTERRUPTS();
        if (++tries > 1000)
            break;
    }
    if (st != GC_OK)
        ereport(ERROR, (errcode(sqlstate_of(st)), errmsg("gemmaclf: %s", e.msg),
                        st == GC_EDEVICE ? errhint("Set gemmaclf.device = 'cpu'.") : 0));
}

const char *gcpg_text_utf8(text *t, size_t *len)
{
    const char *s = VARDATA_ANY(t);
    int n = VARSIZE_ANY_EXHDR(t);
    int enc = GetDatabaseEncoding();

    *len = (size_t)n;
    /* UTF-8 needs nothing; SQL_ASCII bytes are passed on and the core replaces invalid
     * UTF-8 with U+FFFD. */
    if (enc == PG_UTF8 || enc == PG_SQL_ASCII)
        return s;
    s = (const char *)pg_do_encoding_conversion((unsigned char *)s, n, enc, PG_UTF8);
    if (s != VARDATA_ANY(t))
        *len = strlen(s);
    return s;
}

text *gcpg_label_text(const char *label)
{
    char *s = pg_any_to_server(label, (int)strlen(label), PG_UTF8);

    return cstring_to_text(s);
}

Datum gcpg_scores_jsonb(const gc_classifier *c, const float *probs, int label)
{
    StringInfoData buf;
    char num[64];
    char *json;

    initStringInfo(&buf);
    appendStringInfoString(&buf, "{\"label\": ");
    escape_json(&buf, gc_classifier_label(c, label));
    appendStringInfoString(&buf, ", \"scores\": {");
    for (int l = 0; l < gc_classifier_n_labels(c); l++) {
        if (l)
            appendStringInfoString(&buf, ", ");
        escape_json(&buf, gc_classifier_label(c, l));
        snprintf(num, sizeof num, ": %.6g", (double)probs[l]);
        appendStringInfoString(&buf, num);
    }
    appendStringInfoString(&buf, "}}");
    json = pg_any_to_server(buf.data, buf.len, PG_UTF8);
    return DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
}

bool gcpg_is_text_type(Oid typid)
{
    typid = getBaseType(typid);
    return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID;
}

/* ---- gemmaclf_model_info() ----------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(gemmaclf_model_info);
Datum gemmaclf_model_info(PG_FUNCTION_ARGS)
{
    const gc_classifier *c = gcpg_classifier();
    gc_session *s = session();
    const gc_model *m = gc_classifier_model(c);
    const gc_config *cfg = gc_model_config(m);
    gc_device dev = gc_ctx_device(gc_session_ctx(s));
    StringInfoData b;

    initStringInfo(&b);
    appendStringInfoString(&b, "{\"model_path\": ");
    escape_json(&b, clf_path);
    appendStringInfoString(&b, ", \"architecture\": ");
    escape_json(&b, cfg->architecture);
    appendStringInfo(&b, ", \"parameters\": %zu, \"dtype\": ", gc_model_param_count(m));
    escape_json(&b, cfg->dtype);
    appendStringInfo(&b, ", \"weight_bytes\": %zu, \"layers\": %d, \"hidden_size\": %d"
                         ", \"vocab_size\": %d, \"tokenizer_vocab_size\": %d, \"labels\": [",
                     gc_model_weight_bytes(m), cfg->n_layers, cfg->hidden_size, cfg->vocab_size,
                     gc_tokenizer_vocab_size(gc_classifier_tokenizer(c)));
    for (int l = 0; l < gc_classifier_n_labels(c); l++) {
        if (l)
            appendStringInfoString(&b, ", ");
        escape_json(&b, gc_classifier_label(c, l));
    }
    appendStringInfoString(&b, "], \"prompt_prefix\": ");
    escape_json(&b, gc_classifier_labels_config(c)->prompt_prefix);
    appendStringInfo(&b, ", \"scoring\": \"%s\", \"cached_prefix_tokens\": %d"
                         ", \"device\": \"%s\", \"threads\": %d, \"load_ms\": %.1f"
                         ", \"preloaded\": %s, \"max_input_tokens\": %d, \"batch_size\": %d}",
                     gc_classifier_first_token_scoring(c) ? "first_token" : "sequence",
                     gc_classifier_shared_prefix_len(c), dev == GC_DEVICE_CUDA ? "cuda" : "cpu",
                     sess_threads, gc_classifier_load_ms(c), clf_preloaded ? "true" : "false",
                     gemmaclf_max_input_tokens, gemmaclf_batch_size);
    PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
                                        CStringGetDatum(pg_any_to_server(b.data, b.len, PG_UTF8))));
}

/* ---- module load ---------------------------------------------------------------------------- */

static void define_gucs(void)
{
    DefineCustomStringVariable(
        "gemmaclf.model_path", "Directory of the Gemma 3 classifier model (empty: bundled model).",
        "Superuser only: the server reads the files it names. A change reloads the model on the "
        "next use in each session.",
        &gemmaclf_model_path, "", PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomEnumVariable("gemmaclf.device", "Where the forward pass runs: auto, cpu or cuda.",
                             "auto uses CUDA when the plugin and a GPU are available.",
                             &gemmaclf_device, GC_DEVICE_AUTO, device_options, PGC_USERSET, 0,
                             NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.threads", "BLAS threads per backend (0: OpenBLAS default).",
                            "Parallel workers always use one thread.", &gemmaclf_threads, 1, 0,
                            256, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.max_input_tokens",
                            "Comment tokens kept per text; longer comments keep their first ones.",
                            "At most 8192, and never more than the model's context allows.",
                            &gemmaclf_max_input_tokens, GC_DEFAULT_MAX_INPUT_TOKENS, 1,
                            8192, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.batch_size", "Texts per forward pass in batched calls.",
                            NULL, &gemmaclf_batch_size, GC_DEFAULT_BATCH_SIZE, 1, 4096,
                            PGC_USERSET, 0, NULL, NULL, NULL);
    MarkGUCPrefixReserved("gemmaclf");
}

void _PG_init(void)
{
    define_gucs();
    /* In the postmaster: load model and tokenizer (CPU objects only, no CUDA) before fork so
     * every backend shares the pages. A failure must not stop the server: log it, and the
     * first use in a backend reports it as an ERROR. */
    if (process_shared_preload_libraries_in_progress && load_classifier(WARNING)) {
        gc_err e = {0};

        clf_preloaded = true;
        ereport(LOG, (errmsg("gemmaclf: loaded model \"%s\" in %.1f ms", clf_path,
                             gc_classifier_load_ms(clf))));
        /* Also the CPU session with the cached prompt head (one BLAS thread, no CUDA): a
         * backend whose settings match starts classifying without computing it. */
        if (new_session(clf, 1, GC_DEVICE_CPU, &e) != GC_OK)
            ereport(LOG, (errmsg("gemmaclf: no preloaded session: %s", e.msg)));
    }
}
