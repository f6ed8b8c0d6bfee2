-- Label and scores columns of a domain type: what the trigger and the procedure store meets the
-- domain's length limit and constraints, as any INSERT or UPDATE would (a BEFORE trigger's row is
-- stored without the executor checking its domains, so the trigger checks them itself).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
\set VERBOSITY terse

CREATE DOMAIN short_label AS varchar(4);
CREATE DOMAIN wide_label AS varchar(20) DEFAULT 'unlabelled' NOT NULL;
-- CHECK constraints that only the longest label (12 characters) breaks
CREATE DOMAIN mild_label AS text CHECK (length(VALUE) <= 8);
CREATE DOMAIN mild_scores AS jsonb CHECK (length(VALUE->>'label') <= 8);

-- the trigger
CREATE TABLE t_short (body text, label short_label);
CREATE TRIGGER flag BEFORE INSERT ON t_short FOR EACH ROW
EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO t_short VALUES ('Randi saali mc');
INSERT INTO t_short VALUES ('Sali');
SELECT count(*) AS stored FROM t_short;

CREATE TABLE t_wide (body text, label wide_label);
CREATE TRIGGER flag BEFORE INSERT ON t_wide FOR EACH ROW
EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO t_wide VALUES ('Randi saali mc'), ('Sali');
-- a NULL text gives a NULL label, which this domain does not allow
INSERT INTO t_wide VALUES (NULL);
SELECT * FROM t_wide ORDER BY body;

CREATE TABLE t_mild (body text, label mild_label, scores mild_scores);
CREATE TRIGGER flag BEFORE INSERT ON t_mild FOR EACH ROW
EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO t_mild VALUES ('Sali');
INSERT INTO t_mild VALUES ('Randi saali mc');
DROP TRIGGER flag ON t_mild;
ALTER TABLE t_mild ALTER COLUMN label TYPE text;
CREATE TRIGGER flag BEFORE INSERT ON t_mild FOR EACH ROW
EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label', 'scores');
INSERT INTO t_mild VALUES ('A');
INSERT INTO t_mild VALUES ('Randi saali mc');
SELECT body, label, scores->>'label' AS scores_label FROM t_mild ORDER BY body;

-- the procedure: a label column too narrow for a label is refused before any row is updated;
-- a domain's constraint fails the UPDATE of the row that breaks it
CREATE TABLE p_short (id int, body text, label short_label);
INSERT INTO p_short VALUES (1, 'Sali'), (2, 'A'), (3, 'Randi saali mc');
CALL gemmaclf_classify_table('p_short', 'body', 'label', 1);
SELECT count(label) AS labelled FROM p_short;

CREATE TABLE p_mild (id int, body text, label mild_label, scores mild_scores);
INSERT INTO p_mild VALUES (1, 'Sali'), (2, 'A');
SET client_min_messages = warning;
CALL gemmaclf_classify_table('p_mild', 'body', 'label', 10, 'scores');
RESET client_min_messages;
SELECT body, label, scores->>'label' AS scores_label FROM p_mild ORDER BY id;
INSERT INTO p_mild VALUES (3, 'Randi saali mc');
UPDATE p_mild SET label = NULL, scores = NULL;
CALL gemmaclf_classify_table('p_mild', 'body', 'label', 10, 'scores');
SELECT count(label) AS labelled FROM p_mild;
ALTER TABLE p_mild ALTER COLUMN label TYPE text;
CALL gemmaclf_classify_table('p_mild', 'body', 'label', 10, 'scores');
SELECT count(label) AS labelled FROM p_mild;

DROP TABLE t_short, t_wide, t_mild, p_short, p_mild;
DROP DOMAIN short_label, wide_label, mild_label, mild_scores;
