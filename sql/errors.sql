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
-- a directory whose files are broken: the engine's reason goes to DETAIL (shown here)
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/gemmaclf_broken && mkdir -p /tmp/gemmaclf_broken && echo "{ not json" > /tmp/gemmaclf_broken/config.json';
SET gemmaclf.model_path = '/tmp/gemmaclf_broken';
SELECT classify_hate_scores('x');
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; printf "{\"architectures\": [\"Gemma3ForCausalLM\"]}" > /tmp/gemmaclf_broken/config.json';
SELECT gemmaclf_model_info();
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/gemmaclf_broken';
-- back to a good model: works again in the same session
SET gemmaclf.model_path = :'ref';
SELECT classify_hate('Sali');
-- device = cuda without a usable GPU is an ERROR (SQLSTATE 38000, HINT: device = cpu), never a
-- silent CPU run. The reason in parentheses depends on whether the plugin was built (no nvcc:
-- none installed; nvcc but no driver: "no CUDA device"), so only the text before it is shown.
-- These suites run where there is no GPU (CI); scripts/gpu-check.sh checks a GPU machine.
SET gemmaclf.device = 'cuda';
CREATE TEMP TABLE cuda_try (outcome text);
DO $$
DECLARE st text; msg text; hint text;
BEGIN
  INSERT INTO cuda_try
  VALUES ('no error: ' || classify_hate('Sali') || ' on ' || (gemmaclf_model_info()->>'device'));
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
  INSERT INTO cuda_try VALUES (st || ': ' || trim(substring(msg from '^[^(]*')) || ' HINT: ' || hint);
END $$;
SELECT outcome FROM cuda_try;
RESET gemmaclf.device;
SELECT classify_hate('Sali') AS after_reset;
