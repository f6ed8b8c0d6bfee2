-- Tables that fight back. CALL gemmaclf_classify_table must end when the UPDATE leaves some
-- labels NULL (labelling the other rows and reporting how many it could not), and an errored or
-- cancelled CALL must leave none of its plans behind in the session.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';
\set VERBOSITY terse
-- a guard only: a CALL that never ended (the old behaviour) fails here instead of hanging
SET statement_timeout = '60s';

-- a BEFORE UPDATE trigger that skips archived rows (RETURN NULL) and clears the label of others
CREATE TABLE arch (id int PRIMARY KEY, body text, label text, archived bool DEFAULT false);
INSERT INTO arch (id, body, archived)
SELECT i, (ARRAY['A', 'Sali', 'Randi saali mc', 'Kya yaar', 'Inki madarchod'])[1 + i % 5], i % 4 = 0
FROM generate_series(1, 40) i;
CREATE FUNCTION arch_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.archived THEN RETURN NULL; END IF;
  IF NEW.id % 7 = 0 THEN NEW.label := NULL; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER keep BEFORE UPDATE ON arch FOR EACH ROW EXECUTE FUNCTION arch_keep();
SET client_min_messages = warning;
-- committing per batch
CALL gemmaclf_classify_table('arch', 'body', 'label', 4);
-- and in one transaction (our own row locks do not make SKIP LOCKED skip)
BEGIN;
CALL gemmaclf_classify_table('arch', 'body', 'label', 3);
COMMIT;
RESET client_min_messages;
SELECT count(*) FILTER (WHERE label IS NULL) AS unlabelled,
       count(*) FILTER (WHERE archived OR id % 7 = 0) AS expected_unlabelled,
       count(*) FILTER (WHERE label = classify_hate(body)) AS correct
FROM arch;
-- a rule that does nothing instead of the UPDATE: an ERROR before any row is classified (the
-- UPDATE must be able to say whether it stored a label), not an endless loop
CREATE TABLE ruled (id int, body text, label text);
INSERT INTO ruled SELECT i, 'Sali' FROM generate_series(1, 5) i;
CREATE RULE nothing AS ON UPDATE TO ruled DO INSTEAD NOTHING;
CALL gemmaclf_classify_table('ruled', 'body', 'label', 2);

-- errored and cancelled CALLs: none of their plans stay in the session's memory
CREATE TABLE failing (id int, body text, label text);
INSERT INTO failing SELECT i, 'Sali' FROM generate_series(1, 6) i;
CREATE FUNCTION fail_update() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'no updates today'; END $$;
CREATE TRIGGER fail BEFORE UPDATE ON failing FOR EACH ROW EXECUTE FUNCTION fail_update();
SET client_min_messages = warning;
CALL gemmaclf_classify_table('failing', 'body', 'label', 2);
CALL gemmaclf_classify_table('failing', 'body', 'label', 2);
CALL gemmaclf_classify_table('failing', 'body', 'label', 2);
-- the trigger cancels its own statement: the same as a user's cancel during the CALL
DROP TRIGGER fail ON failing;
CREATE FUNCTION cancel_update() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_cancel_backend(pg_backend_pid()); PERFORM pg_sleep(60); RETURN NEW; END $$;
CREATE TRIGGER cancel BEFORE UPDATE ON failing FOR EACH ROW EXECUTE FUNCTION cancel_update();
CALL gemmaclf_classify_table('failing', 'body', 'label', 2);
CALL gemmaclf_classify_table('failing', 'body', 'label', 2);
RESET client_min_messages;
SELECT count(*) AS plans_left FROM pg_backend_memory_contexts
WHERE name = 'CachedPlanSource' AND ident LIKE '%public.failing%';
-- and a CALL that succeeds leaves none either
DROP TRIGGER cancel ON failing;
SET client_min_messages = warning;
CALL gemmaclf_classify_table('failing', 'body', 'label', 2);
RESET client_min_messages;
SELECT count(*) AS plans_left FROM pg_backend_memory_contexts
WHERE name = 'CachedPlanSource' AND ident LIKE '%public.failing%';
SELECT count(label) AS labelled FROM failing;

RESET statement_timeout;
DROP TABLE arch, ruled, failing;
DROP FUNCTION arch_keep(), fail_update(), cancel_update();
