-- The model installed with the extension (gemmaclf.model_path = ''): only checks that do not
-- depend on which labels it gives (test/python/test_model_crosscheck.py checks those against
-- transformers). The model is committed (models/) and installed by make install: its absence is
-- a failure, not another expected output.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
RESET gemmaclf.model_path;
SELECT count(*) > 0 AS has_bundled
FROM pg_config c, LATERAL pg_ls_dir(c.setting || '/extension/gemmaclf_models', true, false) d
WHERE c.name = 'SHAREDIR'
  AND (pg_stat_file(c.setting || '/extension/gemmaclf_models/' || d || '/config.json', true)).size > 0;
SELECT i->>'model_path' LIKE '%/extension/gemmaclf_models/%' AS installed_path,
       i->>'architecture' LIKE 'Gemma3%' AS gemma3,
       jsonb_array_length(i->'labels') >= 2 AS labels
FROM gemmaclf_model_info() i;
SELECT classify_hate(t) IN (SELECT jsonb_array_elements_text(gemmaclf_model_info()->'labels')) AS ok
FROM (VALUES ('Kya yaar'), (''), ('😂')) v(t);
SELECT round((SELECT sum(v::numeric) FROM jsonb_each_text(classify_hate_scores('Sali')->'scores') x(k, v)), 3) AS total;
SELECT cardinality(classify_hate(ARRAY['a', NULL, 'b'])) AS n;
