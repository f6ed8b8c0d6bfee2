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
#include <sched.h>
#include <unistd.h>

#include "access/parallel.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "model/cuda_plugin.h"
#include "model/blas_core.h"

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
    int sess_cuda_device, sess_cuda_precision; /* the CUDA settings the session was made for */
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

/* Every model's weights are copied (F32) or converted (BF16/F16) once into
 * $PGDATA/gemmaclf_cache and mapped from there by every backend; the user's files are never
 * mapped, so changing them cannot fault a backend (without the directory: read into each
 * backend's memory). */
static const char *weight_cache_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/gemmaclf_cache", DataDir);
    if (MakePGDirectory(buf) == 0 || errno == EEXIST)
        return buf;
    ereport(LOG, (errcode_for_file_access(),
                  errmsg("gemmaclf: could not create cache directory \"%s\": %m", buf)));
    return NULL;
}

/* The setting as messages show it: a path too long to use is shown by its start only. */
static const char *setting_shown(const char *setting)
{
    size_t len = strlen(setting);

    if (len < MAXPGPATH)
        return setting;
    return psprintf("%.*s...", pg_mbcliplen(setting, (int)Min(len, MAXPGPATH), 64), setting);
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
                         errmsg("could not load the gemmaclf model from \"%s\": %s",
                                setting_shown(setting), why),
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

    /* A model directory changed on disk (a file replaced, rewritten, truncated) is loaded
     * again: the weights in use are the server's own copy, so the old model stays valid for
     * whoever still holds it. */
    if (current == NULL || strcmp(setting, current->setting) != 0 ||
        gc_classifier_files_changed(current->clf))
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
int gcpg_wanted_device(void)
{
    if (gemmaclf_device == GC_DEVICE_AUTO && gc_cuda_load(NULL) == NULL)
        return GC_DEVICE_CPU;
    return gemmaclf_device;
}

/* The core's notice (the CPU fallback after a fatal CUDA error, once per process). */
static void cuda_notice(void *arg, const char *msg)
{
    (void)arg;
    ereport(WARNING, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION), errmsg("%s", msg),
                      errhint("Reconnect to use the GPU again.")));
}

typedef struct session_call {
    loaded_model *lm;
    int threads, device, precision;
    gc_err err;
} session_call;

/* Starting a session computes the prompt head (and, for bf16 / int8, maps or builds the
 * converted weights), which stops on interrupts like classifying does: it runs under
 * gcpg_run_interruptible too (see interrupts.c). */
static gc_status new_session(void *arg)
{
    session_call *a = arg;
    loaded_model *lm = a->lm;
    gc_session_opts o = {.ctx = {.threads = a->threads, .device = (gc_device)a->device,
                                 .interrupt = gcpg_interrupt_pending,
                                 .cuda_device = gemmaclf_cuda_device,
                                 .cuda_precision = gemmaclf_cuda_precision,
                                 .notice = cuda_notice,
                                 .precision = (gc_precision)a->precision},
                         .batch_size = gemmaclf_batch_size,
                         .max_input_tokens = gemmaclf_max_input_tokens};
    gc_status st = gc_session_new(lm->clf, &o, &lm->sess, &a->err);

    if (st == GC_OK) {
        lm->sess_threads = a->threads;
        lm->sess_device = a->device;
        lm->sess_precision = a->precision;
        lm->sess_cuda_device = gemmaclf_cuda_device;
        lm->sess_cuda_precision = gemmaclf_cuda_precision;
    }
    return st;
}

/* The cores this process may run on (its CPU affinity, as OpenBLAS counts them). */
static int usable_cores(void)
{
    cpu_set_t set;
    long n;

    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* BLAS threads for this backend: gemmaclf.threads, at most the usable cores (more threads than
 * cores only contend); 0 keeps OpenBLAS' default (all cores). Parallel workers run beside their
 * leader: one thread each, not a pool each. */
static int wanted_threads(void)
{
    if (IsParallelWorker())
        return 1;
    return Min(gemmaclf_threads, usable_cores());
}

gc_session *gcpg_session(gcpg_model *m)
{
    return gcpg_session_for(m, gcpg_wanted_device());
}

gc_session *gcpg_session_for(gcpg_model *m, int device)
{
    session_call a = {.lm = m->lm, .threads = wanted_threads(), .device = device,
                      .precision = gemmaclf_precision};
    loaded_model *lm = m->lm;
    gc_status st;

    Assert(lm);
    if (lm->sess && (lm->sess_threads != a.threads || lm->sess_device != a.device ||
                     lm->sess_precision != a.precision ||
                     (a.device != GC_DEVICE_CPU &&
                      (lm->sess_cuda_device != gemmaclf_cuda_device ||
                       lm->sess_cuda_precision != gemmaclf_cuda_precision))))
        drop_session(lm);
    if (!lm->sess) {
        const char *note;

        st = gcpg_run_interruptible(new_session, &a);
        if (st != GC_OK)
            ereport(ERROR, (errcode(gcpg_sqlstate(st)),
                            errmsg("could not start a gemmaclf session: %s", a.err.msg),
                            gcpg_status_hint(st)));
        /* e.g. a precision this CPU cannot run: the session runs f32 */
        gc_ctx_precision(gc_session_ctx(lm->sess), &note);
        if (*note)
            ereport(WARNING, (errmsg("gemmaclf: %s", note)));
    }
    gc_session_set_limits(lm->sess, gemmaclf_batch_size, gemmaclf_max_input_tokens);
    return lm->sess;
}

/* Said once, by the postmaster: OpenBLAS chose its kernels when it loaded, and only the
 * server's environment can change that (model/blas_core.h). */
static void log_blas_core(void)
{
    const char *better = gc_blas_core_better();

    if (better)
        ereport(LOG, (errmsg("gemmaclf: OpenBLAS runs its \"%s\" kernels, which do not use this "
                             "CPU's AVX2/AVX-512 instructions (f32 several times slower)",
                             gc_blas_core()),
                      errhint("Set OPENBLAS_CORETYPE=%s in the server's environment and restart "
                              "it (Debian: the cluster's \"environment\" file).", better)));
}

void gcpg_session_preload(void)
{
    session_call a = {.threads = 1, .device = GC_DEVICE_CPU, .precision = GC_PRECISION_F32};

    /* Only in the postmaster: model and tokenizer (CPU objects only, no CUDA) are loaded before
     * fork so every backend shares the pages. A failure must not stop the server: log it, and
     * the first use in a backend reports it as an ERROR. */
    if (!process_shared_preload_libraries_in_progress || !load_current(WARNING))
        return;
    current->preloaded = true;
    ereport(LOG, (errmsg("gemmaclf: loaded model \"%s\" in %.1f ms", current->dir,
                         gc_classifier_load_ms(current->clf))));
    log_blas_core();
    /* Also the CPU session with the cached prompt head (one BLAS thread, no CUDA, f32: oneDNN
     * must not start before fork): a backend whose settings match starts classifying without
     * computing it. */
    a.lm = current;
    if (new_session(&a) != GC_OK)
        ereport(LOG, (errmsg("gemmaclf: no preloaded session: %s", a.err.msg)));
}
