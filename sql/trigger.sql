-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

CREATE TABLE comments (id int PRIMARY KEY, body text, hate_label text, hate_scores jsonb);
CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON comments
    FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'hate_label', 'hate_scores');

INSERT INTO comments (id, body) VALUES (1, 'A'), (2, 'Sali'), (3, 'Randi saali mc'), (4, NULL);
SELECT id, body, hate_label, hate_scores->>'label' AS scores_label FROM comments ORDER BY id;

-- new text, new label; NULL text, NULL label
UPDATE comments SET body = 'Randi saali mc' WHERE id = 1;
UPDATE comments SET body = NULL WHERE id = 2;
UPDATE comments SET body = 'Kya yaar' WHERE id = 4;
SELECT id, body, hate_label, hate_scores->>'label' AS scores_label FROM comments ORDER BY id;

-- an update that keeps the text keeps the label; setting the label to NULL re-classifies
UPDATE comments SET body = body, hate_label = 'manual' WHERE id = 3;
SELECT id, body, hate_label FROM comments WHERE id = 3;
UPDATE comments SET body = body, hate_label = NULL WHERE id = 3;
SELECT id, body, hate_label FROM comments WHERE id = 3;

-- two-argument form, varchar label
CREATE TABLE comments2 (body varchar(200), label varchar);
CREATE TRIGGER t2 BEFORE INSERT ON comments2
    FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO comments2 VALUES ('Sali'), ('A');
SELECT * FROM comments2 ORDER BY body;

-- misuse gives clear errors
CREATE TABLE bad (body text, label text, n int);
CREATE TRIGGER b1 BEFORE INSERT ON bad FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body');
INSERT INTO bad VALUES ('x');
DROP TRIGGER b1 ON bad;
CREATE TRIGGER b2 BEFORE INSERT ON bad FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_flag_hate('nope', 'label');
INSERT INTO bad VALUES ('x');
DROP TRIGGER b2 ON bad;
CREATE TRIGGER b3 BEFORE INSERT ON bad FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_flag_hate('body', 'n');
INSERT INTO bad VALUES ('x');
DROP TRIGGER b3 ON bad;
CREATE TRIGGER b4 BEFORE INSERT ON bad FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_flag_hate('body', 'body');
INSERT INTO bad VALUES ('x');
DROP TRIGGER b4 ON bad;
CREATE TRIGGER b5 BEFORE INSERT ON bad FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label', 'n');
INSERT INTO bad VALUES ('x');
DROP TRIGGER b5 ON bad;
CREATE TRIGGER b6 AFTER INSERT ON bad FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO bad VALUES ('x');
DROP TRIGGER b6 ON bad;
CREATE TRIGGER b7 BEFORE INSERT ON bad FOR EACH STATEMENT
    EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO bad VALUES ('x');
DROP TRIGGER b7 ON bad;
CREATE TABLE narrow (body text, label varchar(4));
CREATE TRIGGER b8 BEFORE INSERT ON narrow FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO narrow VALUES ('x');
DROP TABLE narrow;
SELECT count(*) FROM bad;

DROP TABLE comments, comments2, bad;
