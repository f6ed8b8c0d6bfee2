-- A model whose weights make the scores non-finite (NaN or infinity): every path (classify_hate,
-- classify_hate_scores, the array form, the trigger, the procedure) raises the same ERROR; none
-- returns a label computed from NaN, and the backend keeps working.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
\set VERBOSITY terse

-- two copies of the reference model, with the first weight of the final norm set to NaN and to
-- +Inf: the offset comes from the safetensors header (8-byte little-endian length, then JSON)
\set st :ref/model.safetensors
SELECT sum(get_byte(h, i)::bigint << (8 * i)) AS hlen
FROM pg_read_binary_file(:'st', 0, 8) h, generate_series(0, 7) i \gset
SELECT 8 + :hlen + (convert_from(pg_read_binary_file(:'st', 8, :hlen), 'UTF8')::jsonb
                    -> 'model.norm.weight' -> 'data_offsets' ->> 0)::bigint AS off \gset
\set mk 'cat >/dev/null; for v in nan inf; do d=/tmp/gemmaclf_$v; rm -rf $d && mkdir $d && ln -s ' :ref '/config.json ' :ref '/tokenizer.json ' :ref '/tokenizer_config.json $d/ && cp ' :st ' $d/ && chmod u+w $d/model.safetensors || exit 1; done; printf ''\\000\\000\\300\\177'' | dd of=/tmp/gemmaclf_nan/model.safetensors bs=1 seek=' :off ' conv=notrunc 2>/dev/null && printf ''\\000\\000\\200\\177'' | dd of=/tmp/gemmaclf_inf/model.safetensors bs=1 seek=' :off ' conv=notrunc 2>/dev/null'
COPY (SELECT 1) TO PROGRAM :'mk';

CREATE TABLE nf (id int, body text, label text, scores jsonb);
INSERT INTO nf VALUES (1, 'Sali'), (2, 'A');

SET gemmaclf.model_path = '/tmp/gemmaclf_nan';
SELECT classify_hate('Sali');
SELECT classify_hate_scores('Sali');
SELECT classify_hate(ARRAY['Sali', NULL, 'A']);
CALL gemmaclf_classify_table('nf', 'body', 'label', 10, 'scores');
CREATE TRIGGER flag BEFORE INSERT ON nf FOR EACH ROW
EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label', 'scores');
INSERT INTO nf (id, body) VALUES (3, 'Randi saali mc');
-- the SQLSTATE: floating_point_exception
DO $$ BEGIN PERFORM classify_hate('Sali');
EXCEPTION WHEN floating_point_exception THEN RAISE NOTICE 'floating_point_exception';
END $$;

SET gemmaclf.model_path = '/tmp/gemmaclf_inf';
SELECT classify_hate('Sali');
SELECT classify_hate_scores('Sali');

-- nothing was stored; the reference model works again in the same session
SET gemmaclf.model_path = :'ref';
SELECT count(*) AS rows, count(label) AS labelled FROM nf;
SELECT classify_hate('Sali') AS after;

COPY (SELECT 1) TO PROGRAM 'cat >/dev/null; rm -rf /tmp/gemmaclf_nan /tmp/gemmaclf_inf';
DROP TABLE nf;
