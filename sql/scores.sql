-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

-- {"label": ..., "scores": {label: probability}}; probabilities sum to 1, label is the arg-max
SELECT body, s->>'label' AS label,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(s->'scores') k) AS keys,
       round((SELECT sum(v::numeric) FROM jsonb_each_text(s->'scores') x(k, v)), 4) AS total,
       s->>'label' = (SELECT k FROM jsonb_each(s->'scores') x(k, v)
                      ORDER BY v::numeric DESC LIMIT 1) AS label_is_argmax,
       s->>'label' = classify_hate(body) AS agrees
FROM (VALUES ('A'), ('Sali'), ('Randi saali mc')) AS t(body),
     LATERAL (SELECT classify_hate_scores(body) AS s) x;

-- confident cases are confident
SELECT round((classify_hate_scores('A')->'scores'->>'Not Hate')::numeric, 2) >= 0.9 AS confident;

SELECT classify_hate_scores(NULL) IS NULL AS null_is_null;
