-- gemmaclf.precision: superuser only (it can change a label); bf16 and int8 keep f32's labels
-- on the reference classifier (first 300 distinct dev comments; the full set is measured by
-- bench/precision_quality.sh). On a CPU without the instructions a session warns and runs f32:
-- warnings are hidden here so that the output holds on any CPU, and model_info says what ran.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
\set preds :ref/hf_predictions_dev.json
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
-- the setting exists once the module is loaded (before that a SET only makes a placeholder,
-- which loading the module rejects for a non-superuser)
LOAD 'gemmaclf';

SHOW gemmaclf.precision;
SET gemmaclf.precision = 'fp8';
CREATE ROLE gemmaclf_precision_user;
SET ROLE gemmaclf_precision_user;
SET gemmaclf.precision = 'int8';
SELECT set_config('gemmaclf.precision', 'bf16', false);
RESET ROLE;
DROP ROLE gemmaclf_precision_user;

CREATE TEMP TABLE c AS
SELECT row_number() OVER () AS id, p->>'text' AS body
FROM jsonb_array_elements(pg_read_file(:'preds')::jsonb->'predictions') p LIMIT 300;
CREATE TEMP TABLE r (precision text, id bigint, label text, scores jsonb);
INSERT INTO r SELECT 'f32', id, classify_hate(body), classify_hate_scores(body)->'scores' FROM c;
SET client_min_messages = error;
SET gemmaclf.precision = 'bf16';
INSERT INTO r SELECT 'bf16', id, classify_hate(body), classify_hate_scores(body)->'scores' FROM c;
SELECT gemmaclf_model_info()->>'precision' IN ('bf16', 'f32') AS bf16_or_fallback;
SET gemmaclf.precision = 'int8';
INSERT INTO r SELECT 'int8', id, classify_hate(body), classify_hate_scores(body)->'scores' FROM c;
SELECT gemmaclf_model_info()->>'precision' IN ('int8', 'f32') AS int8_or_fallback;
-- batched calls use the same precision
SELECT classify_hate(array_agg(body ORDER BY id)) = (SELECT array_agg(label ORDER BY id) FROM r
       WHERE precision = 'int8') AS int8_batched_same
FROM c;
RESET client_min_messages;
RESET gemmaclf.precision;

SELECT x.precision, count(*) AS comments,
       count(*) FILTER (WHERE x.label = f.label) * 1000 >= count(*) * 995 AS agree_995,
       max(greatest(abs((x.scores->>'Hate')::float8 - (f.scores->>'Hate')::float8),
                    abs((x.scores->>'Not Hate')::float8 - (f.scores->>'Not Hate')::float8),
                    abs((x.scores->>'Extreme Hate')::float8 - (f.scores->>'Extreme Hate')::float8)))
           < 0.05 AS probs_close
FROM r x JOIN r f ON f.id = x.id AND f.precision = 'f32'
WHERE x.precision <> 'f32'
GROUP BY x.precision ORDER BY 1;
