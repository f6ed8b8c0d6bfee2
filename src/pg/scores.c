/* One result as jsonb, {"label": ..., "scores": {label: probability, ...}}: built as UTF-8 text
 * (label names come from the model) and converted to the server encoding before parsing. */
#include "gemmaclf_pg.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"

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
