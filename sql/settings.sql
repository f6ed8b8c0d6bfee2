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
SET gemmaclf.not_a_setting = 1;

-- only a superuser may point the server at model files
CREATE ROLE gemmaclf_regress_user;
SET ROLE gemmaclf_regress_user;
SET gemmaclf.model_path = '/etc';
SELECT set_config('gemmaclf.model_path', '/tmp', false);
-- ordinary settings are fine for everyone, and so is classifying
SET gemmaclf.threads = 2;
SET gemmaclf.batch_size = 8;
RESET ROLE;
SET gemmaclf.model_path = :'ref';
SET ROLE gemmaclf_regress_user;
SELECT classify_hate('Sali') AS as_user;
RESET ROLE;
DROP ROLE gemmaclf_regress_user;
