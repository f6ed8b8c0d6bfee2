-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

-- agreement with transformers' greedy generation on every distinct dev comment
-- (hf_predictions_dev.json): at least 99.5% of the labels must be equal
\set preds :shared/reference/hf-trained-classifier/hf_predictions_dev.json
CREATE TEMP TABLE preds AS
SELECT p->>'text' AS body, p->>'generated' AS generated
FROM jsonb_array_elements(pg_read_file(:'preds')::jsonb->'predictions') p;
SET gemmaclf.batch_size = 64;
CREATE TEMP TABLE got AS
SELECT body, generated, classify_hate(body) AS label FROM preds;
SELECT count(*) > 1800 AS enough_rows,
       100.0 * count(*) FILTER (WHERE label = generated) / count(*) >= 99.5 AS agrees_995
FROM got;
-- batched classification gives the same labels
SELECT (SELECT classify_hate(array_agg(body ORDER BY body)) FROM got) =
       (SELECT array_agg(label ORDER BY body) FROM got) AS batched_same;
