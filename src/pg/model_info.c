/* gemmaclf_model_info(): what is loaded and how it runs, as jsonb. Starting the session here
 * (if the call is the first use) makes device and threads the ones classification will use. */
#include "gemmaclf_pg.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"

static void append_labels(StringInfo b, const gc_classifier *c)
{
    appendStringInfoChar(b, '[');
    for (int l = 0; l < gc_classifier_n_labels(c); l++) {
        if (l)
            appendStringInfoString(b, ", ");
        escape_json(b, gc_classifier_label(c, l));
    }
    appendStringInfoChar(b, ']');
}

static void append_model_info(StringInfo b, gcpg_model *m)
{
    const gc_classifier *c = gcpg_classifier(m);
    gc_device dev = gc_ctx_device(gc_session_ctx(gcpg_session(m)));
    const gc_model *model = gc_classifier_model(c);
    const gc_config *cfg = gc_model_config(model);
    gcpg_model_state ms;

    gcpg_model_describe(m, &ms);
    appendStringInfoString(b, "{\"model_path\": ");
    escape_json(b, ms.dir);
    appendStringInfoString(b, ", \"architecture\": ");
    escape_json(b, cfg->architecture);
    appendStringInfo(b, ", \"parameters\": %zu, \"dtype\": ", gc_model_param_count(model));
    escape_json(b, cfg->dtype);
    appendStringInfo(b, ", \"weight_bytes\": %zu, \"layers\": %d, \"hidden_size\": %d"
                        ", \"vocab_size\": %d, \"tokenizer_vocab_size\": %d, \"labels\": ",
                     gc_model_weight_bytes(model), cfg->n_layers, cfg->hidden_size,
                     cfg->vocab_size, gc_tokenizer_vocab_size(gc_classifier_tokenizer(c)));
    append_labels(b, c);
    appendStringInfoString(b, ", \"prompt_prefix\": ");
    escape_json(b, gc_classifier_labels_config(c)->prompt_prefix);
    appendStringInfo(b, ", \"scoring\": \"%s\", \"cached_prefix_tokens\": %d"
                        ", \"device\": \"%s\", \"threads\": %d, \"load_ms\": %.1f"
                        ", \"preloaded\": %s, \"max_input_tokens\": %d, \"batch_size\": %d}",
                     gc_classifier_first_token_scoring(c) ? "first_token" : "sequence",
                     gc_classifier_shared_prefix_len(c), dev == GC_DEVICE_CUDA ? "cuda" : "cpu",
                     ms.threads, gc_classifier_load_ms(c), ms.preloaded ? "true" : "false",
                     gemmaclf_max_input_tokens, gemmaclf_batch_size);
}

PG_FUNCTION_INFO_V1(gemmaclf_model_info);
Datum gemmaclf_model_info(PG_FUNCTION_ARGS)
{
    gcpg_model *m = gcpg_acquire();
    StringInfoData b;

    initStringInfo(&b);
    append_model_info(&b, m);
    gcpg_release(m);
    PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
                                        CStringGetDatum(pg_any_to_server(b.data, b.len, PG_UTF8))));
}
