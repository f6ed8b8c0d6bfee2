-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

-- one label per comment; high-margin dev comments of each class
SELECT body, classify_hate(body) AS label
FROM (VALUES ('A'), ('Kya yaar'), ('✅✅'), ('Sali'), ('Inki madarchod'),
             ('Randi saali mc'), ('Tuzya aaichi puchi')) AS t(body);

-- NULL in, NULL out (STRICT)
SELECT classify_hate(NULL::text) IS NULL AS null_is_null;

-- declared properties (background labelling's functions: sql/watch.sql)
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, p.provolatile,
       p.proisstrict, p.proparallel, p.procost
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'gemmaclf'
WHERE p.proname NOT LIKE 'gemmaclf\_%watch%'
ORDER BY 1, 2;

-- the same text gives the same label whatever else is classified with it
SELECT count(DISTINCT classify_hate('Sali')) AS distinct_labels FROM generate_series(1, 3);
