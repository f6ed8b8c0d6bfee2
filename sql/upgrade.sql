-- Users upgrade in place: a database that used 0.1.0 (with a trigger and stored labels) is
-- updated with ALTER EXTENSION gemmaclf UPDATE, keeps working, and ends with exactly the objects
-- of a fresh install of the default version.
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
-- its own database, so that nothing of the other suites depends on the extension here
CREATE DATABASE gemmaclf_upgrade;
\c gemmaclf_upgrade
CREATE EXTENSION gemmaclf VERSION '0.1.0';
SET gemmaclf.model_path = :'ref';
SELECT extversion FROM pg_extension WHERE extname = 'gemmaclf';

CREATE TABLE up_comments (id int PRIMARY KEY, body text, label text);
CREATE TRIGGER up_flag BEFORE INSERT OR UPDATE OF body ON up_comments
    FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'label');
INSERT INTO up_comments (id, body) VALUES (1, 'Sali'), (2, 'Kya yaar');
CREATE TEMP TABLE labels_010 AS SELECT id, label FROM up_comments;

ALTER EXTENSION gemmaclf UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'gemmaclf')
    AS at_default_version FROM pg_extension WHERE extname = 'gemmaclf';

-- the old trigger still labels, and labels agree with the ones stored under 0.1.0
INSERT INTO up_comments (id, body) VALUES (3, 'Sali');
SELECT count(*) AS rows_labelled FROM up_comments WHERE label IS NOT NULL;
SELECT count(*) AS same_label_as_010
FROM up_comments u JOIN labels_010 o USING (id) WHERE u.label = o.label;
SELECT (SELECT label FROM up_comments WHERE id = 3) = (SELECT label FROM up_comments WHERE id = 1)
    AS trigger_after_update_agrees;

-- the upgraded extension has exactly the objects of a fresh install
CREATE TEMP TABLE objs_upgraded AS
    SELECT pg_describe_object(classid, objid, objsubid)
           || CASE WHEN classid = 'pg_proc'::regclass
                   THEN ' ' || md5(pg_get_functiondef(objid)) ELSE '' END AS obj
    FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gemmaclf');
DROP TABLE up_comments;
DROP EXTENSION gemmaclf;
CREATE EXTENSION gemmaclf;
CREATE TEMP TABLE objs_fresh AS
    SELECT pg_describe_object(classid, objid, objsubid)
           || CASE WHEN classid = 'pg_proc'::regclass
                   THEN ' ' || md5(pg_get_functiondef(objid)) ELSE '' END AS obj
    FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gemmaclf');
SELECT 'only after upgrade' AS where_, obj FROM (TABLE objs_upgraded EXCEPT TABLE objs_fresh) a
UNION ALL
SELECT 'only in fresh install', obj FROM (TABLE objs_fresh EXCEPT TABLE objs_upgraded) b
ORDER BY 1, 2;
SELECT count(*) > 5 AS has_objects FROM objs_fresh;

\c contrib_regression
DROP DATABASE gemmaclf_upgrade;
