-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

SELECT i->>'model_path' = :'ref' AS path_ok, i->>'architecture' AS architecture,
       (i->>'parameters')::bigint AS parameters, i->>'dtype' AS dtype, i->'labels' AS labels,
       i->>'device' AS device, (i->>'load_ms')::float > 0 AS load_timed,
       i->>'tokenizer_vocab_size' AS tokenizer_vocab, i->>'scoring' AS scoring,
       (i->>'cached_prefix_tokens')::int > 0 AS prefix_cached
FROM gemmaclf_model_info() i;
