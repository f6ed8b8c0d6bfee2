-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

-- the settings exist once the module is loaded (any gemmaclf function call loads it; so does
-- shared_preload_libraries or session_preload_libraries)
LOAD 'gemmaclf';
-- settings and their defaults
RESET gemmaclf.model_path;
SELECT name, setting, context, vartype FROM pg_settings WHERE name LIKE 'gemmaclf.%' ORDER BY 1;
SET gemmaclf.device = 'tpu';
SET gemmaclf.threads = -1;
SET gemmaclf.batch_size = 0;
SET gemmaclf.cuda_precision = 'fp8';
SET gemmaclf.cuda_device = -1;
SET gemmaclf.not_a_setting = 1;

-- only a superuser may point the server at model files
CREATE ROLE gemmaclf_regress_user;
SET ROLE gemmaclf_regress_user;
SET gemmaclf.model_path = '/etc';
SELECT set_config('gemmaclf.model_path', '/tmp', false);
-- nor choose the GPU or its precision (a precision can change a label)
SET gemmaclf.cuda_precision = 'bf16';
SET gemmaclf.cuda_device = 1;
-- ordinary settings are fine for everyone, and so is classifying
SET gemmaclf.threads = 2;
SET gemmaclf.batch_size = 8;
-- but not what can change a label or a score: classify_hate is IMMUTABLE, so a CHECK constraint,
-- an expression index and stored labels rely on every session labelling a text the same way
SET gemmaclf.max_input_tokens = 1;
SELECT set_config('gemmaclf.max_input_tokens', '1', false);
RESET ROLE;
SET gemmaclf.model_path = :'ref';
SET ROLE gemmaclf_regress_user;
SELECT classify_hate('Sali') AS as_user;
RESET ROLE;
DROP ROLE gemmaclf_regress_user;

-- gemmaclf.threads beyond the cores the backend may run on is capped at their number
CREATE TEMP TABLE cores (n int);
COPY cores FROM PROGRAM 'nproc';
SET gemmaclf.threads = 256;
SELECT (gemmaclf_model_info()->>'threads')::int = n AS capped_at_cores FROM cores;
SET gemmaclf.threads = 1;
SELECT (gemmaclf_model_info()->>'threads')::int AS threads;
