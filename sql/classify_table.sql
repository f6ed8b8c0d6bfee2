-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
\set VERBOSITY terse

CREATE TABLE posts (id int PRIMARY KEY, body text, label text, scores jsonb);
INSERT INTO posts (id, body)
SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar', 'Inki madarchod'])[1 + i % 5]
FROM generate_series(1, 23) i;
INSERT INTO posts (id, body) VALUES (24, NULL);
UPDATE posts SET label = 'kept' WHERE id = 1;

-- classifies the rows whose label is NULL (and text is not), committing per batch
CALL gemmaclf_classify_table('posts', 'body', 'label', 10, 'scores');
SELECT count(*) FILTER (WHERE label IS NULL) AS unlabeled,
       count(*) FILTER (WHERE label = 'kept') AS kept,
       count(*) FILTER (WHERE label = classify_hate(body)) AS correct,
       count(*) FILTER (WHERE scores->>'label' = label) AS scores_agree
FROM posts;
-- nothing left: a second call does nothing
CALL gemmaclf_classify_table('posts', 'body', 'label');

-- inside a transaction block it still works (one transaction, no intermediate commits)
UPDATE posts SET label = NULL WHERE id <= 5;
BEGIN;
CALL gemmaclf_classify_table('posts', 'body', 'label', 2);
COMMIT;
SELECT count(*) FILTER (WHERE label IS NULL) AS unlabeled FROM posts;

-- resumable: a cancel stops the run; committed batches stay done and the next call finishes
-- the rest. A trigger cancels the statement (its own backend, no timing involved) when the
-- procedure writes its 3rd row, the first of the second 2-row batch: exactly one batch is
-- committed.
UPDATE posts SET label = NULL, scores = NULL;
CREATE SEQUENCE row_writes;
CREATE FUNCTION cancel_at_third() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
  IF nextval('row_writes') = 3 THEN
    PERFORM pg_cancel_backend(pg_backend_pid());
    PERFORM pg_sleep(0);  -- checks for interrupts: the cancel is raised here
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER cancel_at_third BEFORE UPDATE ON posts FOR EACH ROW EXECUTE FUNCTION cancel_at_third();
CALL gemmaclf_classify_table('posts', 'body', 'label', 2);
SELECT count(*) FILTER (WHERE label IS NOT NULL) AS done_before_cancel FROM posts;
DROP TRIGGER cancel_at_third ON posts;
CALL gemmaclf_classify_table('posts', 'body', 'label', 100);
SELECT count(*) FILTER (WHERE label IS NULL) AS unlabeled,
       count(*) FILTER (WHERE label = classify_hate(body)) AS correct FROM posts;

-- identifiers are quoted: odd names work
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Odd Table" ("Body Text" varchar, "Label!" text);
INSERT INTO "My Schema"."Odd Table" VALUES ('A'), ('Sali');
CALL gemmaclf_classify_table('"My Schema"."Odd Table"', 'Body Text', 'Label!');
SELECT * FROM "My Schema"."Odd Table" ORDER BY 1;

-- partitioned tables
CREATE TABLE parted (id int, body text, label text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (10) TO (20);
INSERT INTO parted VALUES (1, 'A'), (11, 'Sali'), (12, 'Randi saali mc');
CALL gemmaclf_classify_table('parted', 'body', 'label');
SELECT * FROM parted ORDER BY id;

-- clear errors
CALL gemmaclf_classify_table('posts', 'nope', 'label');
CALL gemmaclf_classify_table('posts', 'body', 'id');
CALL gemmaclf_classify_table('posts', 'body', 'label', 0);
CALL gemmaclf_classify_table('posts', 'body', 'label', 10, 'label');
CALL gemmaclf_classify_table('no_such_table', 'body', 'label');
CREATE VIEW posts_v AS SELECT * FROM posts;
CALL gemmaclf_classify_table('posts_v', 'body', 'label');

DROP VIEW posts_v;
DROP TABLE posts, parted, "My Schema"."Odd Table";
DROP SCHEMA "My Schema";
DROP FUNCTION cancel_at_third();
DROP SEQUENCE row_writes;
