-- Agreement of classify_hate with transformers' greedy generation (the seed pipeline's output)
-- on every distinct dev comment of ../shared/reference/hf-trained-classifier/hf_predictions_dev.json.
-- Run by scripts/pg-test.sh: psql -v ON_ERROR_STOP=1 -f test/sql/agreement.sql (GC_SHARED set).
-- Prints the percentage; fails below 99.5 % or when batched labels differ from per-row ones.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
\set preds :ref/hf_predictions_dev.json
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
CREATE TEMP TABLE preds AS
SELECT p->>'text' AS body, p->>'generated' AS generated
FROM jsonb_array_elements(pg_read_file(:'preds')::jsonb->'predictions') p;
\timing on
CREATE TEMP TABLE got AS SELECT body, generated, classify_hate(body) AS label FROM preds;
\timing off
SELECT count(*) AS comments, count(*) FILTER (WHERE label = generated) AS equal,
       round(100.0 * count(*) FILTER (WHERE label = generated) / count(*), 2) AS agreement_pct
FROM got \gset
\echo 'agreement with transformers on' :comments 'dev comments:' :agreement_pct '%'
SELECT body, generated, label FROM got WHERE label <> generated LIMIT 20;
SELECT (SELECT classify_hate(array_agg(body ORDER BY body)) FROM got) =
       (SELECT array_agg(label ORDER BY body) FROM got) AS batched_same \gset
\echo 'classify_hate(text[]) equals per-row labels:' :batched_same
DO $$
BEGIN
  IF (SELECT count(*) FROM got) < 1800 THEN
    RAISE EXCEPTION 'agreement test: only % comments read', (SELECT count(*) FROM got);
  END IF;
  IF (SELECT 100.0 * count(*) FILTER (WHERE label = generated) / count(*) FROM got) < 99.5 THEN
    RAISE EXCEPTION 'agreement below 99.5 %%';
  END IF;
  IF (SELECT classify_hate(array_agg(body ORDER BY body)) FROM got) IS DISTINCT FROM
     (SELECT array_agg(label ORDER BY body) FROM got) THEN
    RAISE EXCEPTION 'batched labels differ from per-row labels';
  END IF;
END $$;
\echo 'agreement test: ok'
