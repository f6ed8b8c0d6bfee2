/* gemmaclf_inference_status(): the inference worker as one row (the view
 * gemmaclf_inference_status selects it), and gemmaclf_inference_hold(bool), the superuser-only
 * test hook that makes the worker keep the requests it takes until released, so that tests can
 * cancel a waiting backend or stop the worker at a known point without timing. */
#include "inference.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#define N_COLS 19

static const char *state_name(gcpg_worker_state st)
{
    switch (st) {
    case WORKER_STARTING: return "starting";
    case WORKER_READY: return "ready";
    case WORKER_FAILED: return "failed";
    case WORKER_OFF: return "off";
    default: return "not running";
    }
}

PG_FUNCTION_INFO_V1(gemmaclf_inference_status);
Datum gemmaclf_inference_status(PG_FUNCTION_ARGS)
{
    TupleDesc desc;
    Datum v[N_COLS] = {0};
    bool null[N_COLS];
    gcpg_infer_shared w;
    int queued = 0, taken = 0;

    if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "return type must be a row type");
    memset(null, true, sizeof null);
    if (!gcpg_infer) {
        v[1] = CStringGetTextDatum(
            "off (needs shared_preload_libraries = gemmaclf and gemmaclf.inference_worker "
            "= on or auto)");
        null[1] = false;
        PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, null)));
    }
    LWLockAcquire(gcpg_infer->lock, LW_SHARED);
    memcpy(&w, gcpg_infer, offsetof(gcpg_infer_shared, slots));
    LWLockRelease(gcpg_infer->lock);
    for (int i = 0; i < gcpg_infer->n_slots; i++) {
        uint32 st = pg_atomic_read_u32(&gcpg_infer_slot_at(i)->state);

        queued += st == SLOT_SUBMITTED;
        taken += st == SLOT_TAKEN || st == SLOT_CANCELLED;
    }
    memset(null, false, sizeof null);
    v[0] = Int32GetDatum(w.worker_pid);
    null[0] = w.worker_pid == 0;
    v[1] = CStringGetTextDatum(state_name(w.state));
    v[2] = CStringGetTextDatum(w.device == GC_DEVICE_CUDA ? "cuda" : "cpu");
    null[2] = w.state != WORKER_READY;
    v[3] = CStringGetTextDatum(w.model_dir);
    null[3] = w.model_dir[0] == '\0';
    v[4] = Int32GetDatum(w.batch_size);
    v[5] = Float8GetDatum(w.batch_wait_ms);
    v[6] = Int64GetDatum((int64)w.batches);
    v[7] = Int64GetDatum((int64)w.requests);
    v[8] = Int64GetDatum((int64)w.texts);
    v[9] = Float8GetDatum(w.batches ? (double)w.texts / w.batches : 0);
    null[9] = w.batches == 0;
    v[10] = Float8GetDatum(w.requests ? w.wait_sum_ms / w.requests : 0);
    null[10] = w.requests == 0;
    v[11] = Float8GetDatum(w.wait_max_ms);
    null[11] = w.requests == 0;
    v[12] = Int64GetDatum((int64)w.errors);
    v[13] = Int64GetDatum((int64)w.discarded);
    v[14] = Int32GetDatum(queued);
    v[15] = Int32GetDatum(taken);
    /* GPU memory: the CUDA plugin's ABI has no memory query yet; NULL on the CPU */
    null[16] = true;
    v[17] = TimestampTzGetDatum(w.started_at);
    null[17] = w.started_at == 0;
    v[18] = CStringGetTextDatum(w.error);
    null[18] = w.error[0] == '\0';
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, null)));
}

PG_FUNCTION_INFO_V1(gemmaclf_inference_hold);
Datum gemmaclf_inference_hold(PG_FUNCTION_ARGS)
{
    bool on = PG_GETARG_BOOL(0), was;
    Latch *worker;

    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("gemmaclf_inference_hold() is for superusers (a test hook)")));
    if (!gcpg_infer)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the gemmaclf inference worker is not configured"),
                        errhint("Set shared_preload_libraries = 'gemmaclf' and "
                                "gemmaclf.inference_worker = on.")));
    LWLockAcquire(gcpg_infer->lock, LW_EXCLUSIVE);
    was = gcpg_infer->hold;
    gcpg_infer->hold = on;
    worker = gcpg_infer->worker_latch;
    LWLockRelease(gcpg_infer->lock);
    if (worker)
        SetLatch(worker);
    PG_RETURN_BOOL(was);
}
