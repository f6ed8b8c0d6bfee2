-- A model stays alive while anyone uses it: a reload of gemmaclf.model_path in the middle of a
-- call (here a trigger function's SET clause fired by gemmaclf_classify_table's UPDATEs) must not
-- free the model the call is using, nor give its rows the other model's labels.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
\set VERBOSITY terse
-- a crash in any backend restarts the postmaster: compared at the end
SELECT pg_postmaster_start_time() AS postmaster_start \gset

-- model B: the reference weights under other label names
\set mk 'cat >/dev/null; rm -rf /tmp/gemmaclf_relabel && mkdir -p /tmp/gemmaclf_relabel && ln -s ' :ref '/config.json ' :ref '/model.safetensors ' :ref '/tokenizer.json ' :ref '/tokenizer_config.json /tmp/gemmaclf_relabel/ && printf ''{"labels": ["Clean", "Abusive", "Severe"]}'' > /tmp/gemmaclf_relabel/gemmaclf.json'
COPY (SELECT 1) TO PROGRAM :'mk';
SET gemmaclf.model_path = '/tmp/gemmaclf_relabel';
SELECT jsonb_array_elements_text(gemmaclf_model_info()->'labels') AS model_b_labels;
SET gemmaclf.model_path = :'ref';

CREATE TABLE relabel (id int PRIMARY KEY, body text, label text, label_b text);
INSERT INTO relabel (id, body)
SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar', 'Inki madarchod'])[1 + i % 5]
FROM generate_series(1, 10) i;
CREATE FUNCTION relabel_b() RETURNS trigger LANGUAGE plpgsql
SET gemmaclf.model_path = '/tmp/gemmaclf_relabel'
AS $$ BEGIN NEW.label_b := classify_hate(NEW.body); RETURN NEW; END $$;
CREATE TRIGGER relabel_b BEFORE UPDATE ON relabel FOR EACH ROW EXECUTE FUNCTION relabel_b();

-- one batch of 10: every UPDATE loads model B, the batch keeps model A
SET client_min_messages = warning;
CALL gemmaclf_classify_table('relabel', 'body', 'label', 100);
RESET client_min_messages;
SELECT body, label, label_b IN ('Clean', 'Abusive', 'Severe') AS label_b_is_model_b,
       label = classify_hate(body) AS label_is_model_a
FROM relabel ORDER BY id;

-- the same for the trigger: its label comes from the model of its own setting
CREATE TABLE relabel2 (body text, label text, label_b text);
CREATE TRIGGER flag BEFORE INSERT ON relabel2 FOR EACH ROW
EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
CREATE FUNCTION relabel2_b() RETURNS trigger LANGUAGE plpgsql
SET gemmaclf.model_path = '/tmp/gemmaclf_relabel'
AS $$ BEGIN NEW.label_b := classify_hate(NEW.body); RETURN NEW; END $$;
CREATE TRIGGER zz_relabel2_b BEFORE INSERT ON relabel2 FOR EACH ROW EXECUTE FUNCTION relabel2_b();
INSERT INTO relabel2 (body) VALUES ('Sali'), ('A'), ('Randi saali mc');
SELECT body, label, label_b IN ('Clean', 'Abusive', 'Severe') AS label_b_is_model_b
FROM relabel2 ORDER BY body;

-- a long setting names one model: loaded once, not on every call
\set mk 'cat >/dev/null; rm -f /tmp/gemmaclf_long && ln -s ' :ref ' /tmp/gemmaclf_long'
COPY (SELECT 1) TO PROGRAM :'mk';
SELECT set_config('gemmaclf.model_path', '/tmp/gemmaclf_long' || repeat('/.', 500), false)
       IS NOT NULL AS set;
SELECT classify_hate('Sali') AS label FROM generate_series(1, 10);
-- a setting longer than a path may be (1023 bytes) is an ERROR, never cut: cut at 1023 bytes,
-- this one would name the model in /tmp/gemmaclf_long instead of a directory that does not exist
SELECT set_config('gemmaclf.model_path', '/tmp/gemmaclf_long' || repeat('/.', 510) || '/no/such/dir',
                  false) IS NOT NULL AS set;
SELECT classify_hate('Sali') AS label FROM generate_series(1, 10);
SELECT classify_hate_scores('Sali');
SET gemmaclf.model_path = :'ref';
SELECT classify_hate('Sali') AS label;

SELECT pg_postmaster_start_time() = :'postmaster_start' AS postmaster_not_restarted;

COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/gemmaclf_relabel /tmp/gemmaclf_long';
DROP TABLE relabel, relabel2;
DROP FUNCTION relabel_b(), relabel2_b();
