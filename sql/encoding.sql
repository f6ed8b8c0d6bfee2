-- Databases in other encodings: texts are converted to UTF-8 (LATIN1), or, in SQL_ASCII,
-- invalid UTF-8 bytes are replaced by U+FFFD; labels come back in the database encoding.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS gemmaclf_latin1;
DROP DATABASE IF EXISTS gemmaclf_sqlascii;
RESET client_min_messages;
CREATE DATABASE gemmaclf_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
CREATE DATABASE gemmaclf_sqlascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;

-- the reference: the same texts classified in this (UTF-8) database; the other databases must
-- give exactly these probabilities
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
SELECT classify_hate_scores('Randi saali mc') AS s_plain,
       classify_hate_scores('café crème à la carte') AS s_accents,
       classify_hate_scores(E'bad \uFFFD\uFFFD bytes \uFFFD') AS s_invalid,
       classify_hate_scores('हि') AS s_hi,
       classify_hate(E'\uFFFD\uFFFD') AS l_ff, classify_hate('Sali') AS l_sali \gset

\c gemmaclf_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION gemmaclf;
SET gemmaclf.model_path = :'ref';
SELECT classify_hate_scores('Randi saali mc') = :'s_plain'::jsonb AS plain,
       classify_hate_scores('café crème à la carte') = :'s_accents'::jsonb AS accents,
       classify_hate_scores('Sali')->>'label' AS scores_label,
       classify_hate(ARRAY['A', 'Sali']) AS batch;

\c gemmaclf_sqlascii
SET client_encoding = 'SQL_ASCII';
CREATE EXTENSION gemmaclf;
SET gemmaclf.model_path = :'ref';
SELECT classify_hate_scores('Randi saali mc') = :'s_plain'::jsonb AS plain,
       classify_hate_scores(E'bad \xff\xfe bytes \xc3') = :'s_invalid'::jsonb AS invalid_utf8_as_fffd,
       classify_hate_scores(E'\xe0\xa4\xb9\xe0\xa4\xbf') = :'s_hi'::jsonb AS valid_utf8;
-- each invalid byte reads as U+FFFD
SELECT classify_hate_scores(E'Sali \xff\xfe \xc3') =
       classify_hate_scores(E'Sali \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd') AS replaced;
CREATE TABLE t (body text, label text);
CREATE TRIGGER f BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO t VALUES (E'\x80\x81'), ('Sali');
SELECT count(*) FILTER (WHERE body = 'Sali' AND label = :'l_sali') AS sali_as_utf8_db,
       count(*) FILTER (WHERE body = E'\x80\x81' AND label = :'l_ff') AS invalid_as_utf8_db
FROM t;

\c :regress_db
DROP DATABASE gemmaclf_latin1;
DROP DATABASE gemmaclf_sqlascii;
