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

-- gemmaclf.json "temperature": probabilities = softmax((score + bias) / T); the label does not move.
-- A copy of the reference model with T = 2: every probability is sqrt(p) renormalised.
\set tdir /tmp/gemmaclf_temperature
\set mk 'cat >/dev/null; rm -rf ' :tdir ' ' :tdir '_bad && mkdir -p ' :tdir ' ' :tdir '_bad && for d in ' :tdir ' ' :tdir '_bad; do for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do ln -s ' :ref '/$f $d/$f; done; done && printf ''{"temperature": 2}'' > ' :tdir '/gemmaclf.json && printf ''{"temperature": -0.5}'' > ' :tdir '_bad/gemmaclf.json'
COPY (SELECT 1) TO PROGRAM :'mk';
CREATE TEMP TABLE t1 AS
SELECT body, classify_hate_scores(body) AS s FROM (VALUES ('A'), ('Sali'), ('Randi saali mc')) v(body);
SET gemmaclf.model_path = :'tdir';
SELECT t1.body, s2->>'label' = t1.s->>'label' AS same_label,
       max(abs((s2->'scores'->>k)::float8 - sqrt((t1.s->'scores'->>k)::float8) /
               (SELECT sum(sqrt(v::float8)) FROM jsonb_each_text(t1.s->'scores') x(kk, v)))) < 1e-5 AS tempered,
       bool_or((s2->'scores'->>k)::float8 <> (t1.s->'scores'->>k)::float8) AS changed
FROM t1, LATERAL (SELECT classify_hate_scores(t1.body) AS s2) y, LATERAL jsonb_object_keys(t1.s->'scores') k
GROUP BY t1.body, s2, t1.s ORDER BY 1;
-- a temperature that is not a finite number > 0: the model does not load (an ERROR, no crash)
\set tbad :tdir '_bad'
SET gemmaclf.model_path = :'tbad';
SELECT classify_hate('x');
SET gemmaclf.model_path = :'ref';
SELECT classify_hate('Sali') AS back_to_ref;
\set rm 'cat >/dev/null; rm -rf ' :tdir ' ' :tdir '_bad'
COPY (SELECT 1) TO PROGRAM :'rm';

-- gemmaclf.json "comment_norm": "squeeze": the comment is lower-cased (A-Z) and runs of more than
-- 2 equal characters are cut to 2 before the model reads it, so two spellings score alike; the
-- reference model without it scores them apart. An unknown rewrite: the model does not load.
\set ndir /tmp/gemmaclf_comment_norm
\set mk 'cat >/dev/null; rm -rf ' :ndir ' ' :ndir '_bad && mkdir -p ' :ndir ' ' :ndir '_bad && for d in ' :ndir ' ' :ndir '_bad; do for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do ln -s ' :ref '/$f $d/$f; done; done && printf ''{"comment_norm": "squeeze"}'' > ' :ndir '/gemmaclf.json && printf ''{"comment_norm": "casefold"}'' > ' :ndir '_bad/gemmaclf.json'
COPY (SELECT 1) TO PROGRAM :'mk';
SELECT classify_hate_scores('RANDI Saaaali mc!!!!') = classify_hate_scores('randi saali mc!!') AS ref_same;
SET gemmaclf.model_path = :'ndir';
SELECT classify_hate_scores('RANDI Saaaali mc!!!!') = classify_hate_scores('randi saali mc!!') AS squeezed_same,
       gemmaclf_model_info()->>'comment_norm' AS comment_norm;
\set nbad :ndir '_bad'
SET gemmaclf.model_path = :'nbad';
SELECT classify_hate('x');
SET gemmaclf.model_path = :'ref';
SELECT gemmaclf_model_info()->'comment_norm' AS ref_comment_norm;
\set rm 'cat >/dev/null; rm -rf ' :ndir ' ' :ndir '_bad'
COPY (SELECT 1) TO PROGRAM :'rm';
