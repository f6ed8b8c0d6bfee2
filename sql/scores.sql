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

-- the probabilities are transformers': the softmax of its label logits at the prompt's last
-- position (hf_predictions_dev.json), within 1e-5, for the first 200 dev comments; the label is
-- the text transformers generated
\set preds :ref/hf_predictions_dev.json
CREATE TEMP TABLE hf AS
SELECT n, p->>'text' AS body, p->>'generated' AS generated,
       ARRAY(SELECT x::float8 FROM jsonb_array_elements_text(p->'label_first_token_logits')
             WITH ORDINALITY e(x, k) ORDER BY k) AS lg
FROM jsonb_array_elements(pg_read_file(:'preds')::jsonb->'predictions') WITH ORDINALITY a(p, n)
WHERE n <= 200;
SELECT count(*) AS comments,
       max(err) < 1e-5 AS probabilities_as_transformers,
       count(*) FILTER (WHERE s->>'label' = generated) AS labels_as_transformers
FROM (SELECT generated, s,
             (SELECT max(abs((s->'scores'->>l.name)::float8 -
                             exp(lg[l.i]) / (exp(lg[1]) + exp(lg[2]) + exp(lg[3]))))
              FROM (VALUES (1, 'Not Hate'), (2, 'Hate'), (3, 'Extreme Hate')) l(i, name)) AS err
      FROM hf, LATERAL classify_hate_scores(body) s) x;

SELECT classify_hate_scores(NULL) IS NULL AS null_is_null;
