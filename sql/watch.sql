-- Background labelling without shared_preload_libraries (pg_regress runs without it): the SQL
-- objects exist, and gemmaclf_watch() says exactly what to set. The workers themselves are
-- tested by test/pg_watch.sh, in a cluster of its own.
-- declared properties of its functions
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, p.prorettype::regtype
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'gemmaclf'
WHERE p.proname LIKE 'gemmaclf\_%watch%'
ORDER BY 1;
-- its objects: tables, view, event trigger
SELECT pg_describe_object(classid, objid, objsubid) AS object
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'gemmaclf')
  AND classid IN ('pg_class'::regclass, 'pg_event_trigger'::regclass)
  AND pg_describe_object(classid, objid, objsubid) LIKE '%watch%'
ORDER BY 1;
CREATE TABLE watched (id int PRIMARY KEY, body text, label text);
SELECT gemmaclf_watch('watched', 'body', 'label');
SELECT gemmaclf_watch('watched', NULL, 'label');
-- nothing is watched: an empty registry and view, no counters
SELECT count(*) FROM gemmaclf_watch;
SELECT * FROM gemmaclf_watch_status;
SELECT count(*) FROM gemmaclf_watch_stats();
SELECT * FROM gemmaclf_watch_pending('watched');
SELECT gemmaclf_unwatch('watched');
SELECT gemmaclf_watch_retry('watched');
-- the watch trigger only runs as the BEFORE row trigger gemmaclf_watch() installs
CREATE TRIGGER misused AFTER INSERT ON watched FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_watch_trigger('body', 'label');
INSERT INTO watched VALUES (1, 'Sali', NULL);
DROP TRIGGER misused ON watched;
-- as installed, it NULLs the label of a changed text even without workers, and keeps a label
-- when the text stays
CREATE TRIGGER gemmaclf_watch BEFORE INSERT OR UPDATE ON watched FOR EACH ROW
    EXECUTE FUNCTION gemmaclf_watch_trigger('body', 'label');
INSERT INTO watched VALUES (1, 'Sali', 'Hate'), (2, 'Kya yaar', 'Not Hate');
UPDATE watched SET body = 'Sali!' WHERE id = 1 RETURNING id, body, label;
UPDATE watched SET id = 3 WHERE id = 2 RETURNING id, body, label;
UPDATE watched SET body = 'new', label = 'set by hand' WHERE id = 3 RETURNING id, body, label;
-- a column it names is gone: rows are written as they come, never an error
ALTER TABLE watched RENAME COLUMN label TO verdict;
UPDATE watched SET body = 'changed' WHERE id = 3 RETURNING id, body, verdict;
DROP TABLE watched;
