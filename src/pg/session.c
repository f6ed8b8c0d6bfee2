/* The loaded model of this process and its core session.
 *
 * A model is loaded for one gemmaclf.model_path value: in the postmaster with
 * shared_preload_libraries (every backend then shares its pages), else on first use, and again
 * when the setting changes. Callers borrow it with gcpg_acquire/gcpg_release. A reload while a
 * model is borrowed (a trigger function with SET gemmaclf.model_path fired in the middle of
 * gemmaclf_classify_table, or any call between acquire and release) retires the old model instead
 * of freeing it: it is freed when its last use ends, so no caller ever holds a freed classifier
 * and a batch keeps the labels of the model it started with. */
#include "gemmaclf_pg.h"

#include <errno.h>

#include "access/parallel.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "model/cuda_plugin.h"

#define MODEL_HINT \
    "Set gemmaclf.model_path (superuser) to a directory holding config.json, model.safetensors " \
    "and tokenizer.json, or leave it empty to use the model installed with the extension."

/* One loaded model (process lifetime, in TopMemoryContext; the core objects are malloc'd). */
typedef struct loaded_model {
    gc_classifier *clf;
    char *setting;          /* the gemmaclf.model_path value it was loaded for, in full */
    char dir[MAXPGPATH];    /* resolved directory it was loaded from */
    bool preloaded;
    int uses;               /* gcpg_model handles not yet released */
    gc_session *sess;       /* NULL until first needed */
    int sess_threads, sess_device, sess_precision;
} loaded_model;

/* A caller's use; released explicitly or by its memory context's reset callback. */
struct gcpg_model {
    MemoryContextCallback on_reset;
    loaded_model *lm;       /* NULL once released */
};

static loaded_model *current = NULL; /* the model for the last setting used; NULL when none */

static void drop_session(loaded_model *lm)
{
    gc_session_free(lm->sess);
    lm->sess = NULL;
    lm->sess_threads = lm->sess_device = lm->sess_precision = -1;
}

static void free_model(loaded_model *lm)
{
    drop_session(lm);
    gc_classifier_free(lm->clf);
    pfree(lm->setting);
    pfree(lm);
}

/* The current model is no longer wanted: free it now, or when its last use ends. */
static void retire_current(void)
{
    loaded_model *lm = current;

    current = NULL;
    if (lm && lm->uses == 0)
        free_model(lm);
}

/* BF16/F16 weights are converted to F32 once, into $PGDATA/gemmaclf_cache, and mapped from
 * there by every backend (without the directory: converted in each backend's memory). */
static const char *weight_cache_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/gemmaclf_cache", DataDir);
    if (MakePGDirectory(buf) == 0 || errno == EEXIST)
        return buf;
    ereport(LOG, (errcode_for_file_access(),
                  errmsg("gemmaclf: could not create cache directory \"%s\": %m", buf)));
    return NULL;
}

/* Loads the model for the current setting as `current`; at elevel < ERROR failures are only
 * logged. The old model is retired first, so two models are not resident at once. */
static bool load_current(int elevel)
{
    const char *setting = gemmaclf_model_path ? gemmaclf_model_path : "";
    const char *why = NULL;
    char dir[MAXPGPATH], cache[MAXPGPATH];
    gc_err e = {0};
    gc_classifier_opts opts = {0};
    gc_classifier *c = NULL;
    gc_status st;

    if (!gcpg_model_dir(setting, dir, sizeof dir, &why)) {
        ereport(elevel, (errcode(ERRCODE_UNDEFINED_FILE),
                         errmsg("could not load the gemmaclf model from \"%s\": %s", setting, why),
                         errhint(MODEL_HINT)));
        return false;
    }
    opts.cache_dir = weight_cache_dir(cache, sizeof cache);
    retire_current();
    st = gc_classifier_open(dir, &opts, &c, &e);
    if (st != GC_OK) {
        ereport(elevel, (errcode(gcpg_sqlstate(st)),
                         errmsg("could not load the gemmaclf model from \"%s\"", dir),
                         errdetail("%s", e.msg), errhint(MODEL_HINT)));
        return false;
    }
    current = MemoryContextAllocZero(TopMemoryContext, sizeof *current);
    current->clf = c;
    current->setting = MemoryContextStrdup(TopMemoryContext, setting);
    strlcpy(current->dir, dir, sizeof current->dir);
    current->sess_threads = current->sess_device = current->sess_precision = -1;
    return true;
}

static void end_use(gcpg_model *m)
{
    loaded_model *lm = m->lm;

    if (!lm)
        return;
    m->lm = NULL;
    if (--lm->uses == 0 && lm != current)
        free_model(lm);
}

static void end_use_on_reset(void *arg)
{
    end_use((gcpg_model *)arg);
}

gcpg_model *gcpg_acquire(void)
{
    const char *setting = gemmaclf_model_path ? gemmaclf_model_path : "";
    gcpg_model *m;

    if (current == NULL || strcmp(setting, current->setting) != 0)
        load_current(ERROR);
    m = palloc(sizeof *m);
    m->lm = current;
    m->on_reset.func = end_use_on_reset;
    m->on_reset.arg = m;
    MemoryContextRegisterResetCallback(CurrentMemoryContext, &m->on_reset);
    current->uses++;
    return m;
}

void gcpg_release(gcpg_model *m)
{
    end_use(m);
}

const gc_classifier *gcpg_classifier(const gcpg_model *m)
{
    Assert(m->lm);
    return m->lm->clf;
}

void gcpg_model_describe(const gcpg_model *m, gcpg_model_state *out)
{
    out->dir = m->lm->dir;
    out->preloaded = m->lm->preloaded;
    out->threads = m->lm->sess_threads;
}

/* The device a session must be created for: AUTO is CPU when there is no CUDA plugin at all
 * (dlopen only, after fork), so a session preloaded for the CPU can serve it. */
static int wanted_device(void)
{
    if (gemmaclf_device == GC_DEVICE_AUTO && gc_cuda_load(NULL) == NULL)
        return GC_DEVICE_CPU;
    return gemmaclf_device;
}

static gc_status new_session(loaded_model *lm, int threads, int device, int precision,
                             gc_err *e)
{
    gc_session_opts o = {.ctx = {.threads = threads, .device = (gc_device)device,
                                 .interrupt = gcpg_interrupt_pending,
                                 .precision = (gc_precision)precision},
                         .batch_size = gemmaclf_batch_size,
                         .max_input_tokens = gemmaclf_max_input_tokens};
    gc_status st = gc_session_new(lm->clf, &o, &lm->sess, e);

    if (st == GC_OK) {
        lm->sess_threads = threads;
        lm->sess_device = device;
        lm->sess_precision = precision;
    }
    return st;
}

gc_session *gcpg_session(gcpg_model *m)
{
    loaded_model *lm = m->lm;
    /* Parallel workers run beside their leader: one BLAS thread each, not a pool each. */
    int threads = IsParallelWorker() ? 1 : gemmaclf_threads;
    int device = wanted_device();
    gc_err e = {0};
    gc_status st;

    Assert(lm);
    if (lm->sess && (lm->sess_threads != threads || lm->sess_device != device ||
                     lm->sess_precision != gemmaclf_precision))
        drop_session(lm);
    if (!lm->sess) {
        const char *note;

        st = new_session(lm, threads, device, gemmaclf_precision, &e);
        if (st != GC_OK)
            ereport(ERROR, (errcode(gcpg_sqlstate(st)),
                            errmsg("could not start a gemmaclf session: %s", e.msg),
                            gcpg_status_hint(st)));
        /* e.g. a precision this CPU cannot run: the session runs f32 */
        gc_ctx_precision(gc_session_ctx(lm->sess), &note);
        if (*note)
            ereport(WARNING, (errmsg("gemmaclf: %s", note)));
    }
    gc_session_set_limits(lm->sess, gemmaclf_batch_size, gemmaclf_max_input_tokens);
    return lm->sess;
}

void gcpg_session_preload(void)
{
    gc_err e = {0};

    /* Only in the postmaster: model and tokenizer (CPU objects only, no CUDA) are loaded before
     * fork so every backend shares the pages. A failure must not stop the server: log it, and
     * the first use in a backend reports it as an ERROR. */
    if (!process_shared_preload_libraries_in_progress || !load_current(WARNING))
        return;
    current->preloaded = true;
    ereport(LOG, (errmsg("gemmaclf: loaded model \"%s\" in %.1f ms", current->dir,
                         gc_classifier_load_ms(current->clf))));
    /* Also the CPU session with the cached prompt head (one BLAS thread, no CUDA, f32: oneDNN
     * must not start before fork): a backend whose settings match starts classifying without
     * computing it. */
    if (new_session(current, 1, GC_DEVICE_CPU, GC_PRECISION_F32, &e) != GC_OK)
        ereport(LOG, (errmsg("gemmaclf: no preloaded session: %s", e.msg)));
}
