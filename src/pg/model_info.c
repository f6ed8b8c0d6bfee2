/* gemmaclf_model_info(): what is loaded and how it runs, as jsonb. The JSON itself is written
 * by the core (classifier/model_info.c), the same text `gemmaclf info` prints, so SQL and CLI
 * show the same keys; this file only adds what the backend knows (setting, preload, threads).
 * Starting the session here (if the call is the first use) makes device and threads the ones
 * classification will use. */
#include "gemmaclf_pg.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/fmgrprotos.h"

#include "classifier/model_info.h"

/* What only the PostgreSQL layer knows about the inference worker (issue 12): who served this
 * session's last classification ("inference worker", "backend" or null before the first),
 * whether the worker would serve this session's calls now, and its pid. */
static Datum inference_keys(bool serves)
{
    const char *by = gcpg_served_by();
    int pid = gcpg_inference_worker_pid();
    char *s = psprintf("{\"served_by\": %s%s%s, \"inference_worker_serves\": %s, "
                       "\"inference_worker_pid\": %s}",
                       by ? "\"" : "", by ? by : "null", by ? "\"" : "",
                       serves ? "true" : "false", pid ? psprintf("%d", pid) : "null");

    return DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
}

PG_FUNCTION_INFO_V1(gemmaclf_model_info);
Datum gemmaclf_model_info(PG_FUNCTION_ARGS)
{
    gcpg_model *m = gcpg_acquire();
    gcpg_model_state ms;
    gc_err e = {0};
    char *json;
    char *copy;
    gc_model_info_runtime rt = {0};
    bool serves;
    Datum info;

    /* the session first: starting it for the current settings sets the threads described */
    rt.device = gc_ctx_device(gc_session_ctx(gcpg_session(m)));
    gcpg_model_describe(m, &ms);
    rt.model_path = ms.dir;
    rt.precision = gc_ctx_precision(gc_session_ctx(gcpg_session(m)), NULL);
    rt.threads = ms.threads;
    rt.preloaded = ms.preloaded;
    rt.max_input_tokens = gemmaclf_max_input_tokens;
    rt.batch_size = gemmaclf_batch_size;
    json = gc_model_info_json(gcpg_classifier(m), &rt, 1, &e);
    serves = gcpg_inference_serves(m);
    gcpg_release(m);
    if (!json)
        ereport(ERROR, (errcode(gcpg_sqlstate(e.code)),
                        errmsg("could not describe the gemmaclf model: %s", e.msg),
                        gcpg_status_hint(e.code)));
    /* the core's malloc'd text becomes palloc'd before anything below can throw */
    copy = pstrdup(json);
    free(json);
    info = DirectFunctionCall1(jsonb_in,
                               CStringGetDatum(pg_any_to_server(copy, strlen(copy), PG_UTF8)));
    PG_RETURN_DATUM(DirectFunctionCall2(jsonb_concat, info, inference_keys(serves)));
}
