-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

-- a missing or broken model is an ERROR with a HINT naming gemmaclf.model_path, never a crash
SET gemmaclf.model_path = '/nonexistent/gemmaclf-model';
SELECT classify_hate('x');
SET gemmaclf.model_path = '/';
SELECT classify_hate('x');
SET gemmaclf.model_path = 'relative/dir';
SELECT classify_hate(ARRAY['x']);
-- a directory whose files are broken: the engine's reason goes to DETAIL
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/gemmaclf_broken && mkdir -p /tmp/gemmaclf_broken && echo "{ not json" > /tmp/gemmaclf_broken/config.json';
SET gemmaclf.model_path = '/tmp/gemmaclf_broken';
\set VERBOSITY terse
SELECT classify_hate_scores('x');
\set VERBOSITY default
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; printf "{\"architectures\": [\"Gemma3ForCausalLM\"]}" > /tmp/gemmaclf_broken/config.json';
\set VERBOSITY terse
SELECT gemmaclf_model_info();
\set VERBOSITY default
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/gemmaclf_broken';
-- back to a good model: works again in the same session
SET gemmaclf.model_path = :'ref';
SELECT classify_hate('Sali');
-- device = cuda without a usable GPU/plugin is a clean ERROR (SQLSTATE 38000, HINT: device = cpu);
-- with one it classifies
SET gemmaclf.device = 'cuda';
CREATE TEMP TABLE cuda_try (outcome text);
DO $$ BEGIN
  INSERT INTO cuda_try VALUES (classify_hate('Sali'));
EXCEPTION WHEN external_routine_exception THEN
  INSERT INTO cuda_try VALUES ('clean error');
END $$;
SELECT outcome IN ('Hate', 'clean error') AS cuda_ok_or_clean_error FROM cuda_try;
RESET gemmaclf.device;
SELECT classify_hate('Sali') AS after_reset;
