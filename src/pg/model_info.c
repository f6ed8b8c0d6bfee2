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

PG_FUNCTION_INFO_V1(gemmaclf_model_info);
Datum gemmaclf_model_info(PG_FUNCTION_ARGS)
{
    gcpg_model *m = gcpg_acquire();
    gcpg_model_state ms;
    gc_err e = {0};
    char *json;
    char *copy;
    gc_model_info_runtime rt = {0};

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
    gcpg_release(m);
    if (!json)
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
                        errmsg("could not describe the gemmaclf model: %s", e.msg)));
    /* the core's malloc'd text becomes palloc'd before anything below can throw */
    copy = pstrdup(json);
    free(json);
    PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
                                        CStringGetDatum(pg_any_to_server(copy, strlen(copy),
                                                                         PG_UTF8))));
}
