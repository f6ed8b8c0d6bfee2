-- The reference classifier (fixed weights) gives exact labels; GC_SHARED is the absolute path
-- of the shared reference folder (scripts/pg-test.sh exports it).
\getenv shared GC_SHARED
\set ref :shared/reference/hf-trained-classifier
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS gemmaclf;
RESET client_min_messages;
SET gemmaclf.model_path = :'ref';

-- same labels, same order, NULLs kept
SELECT classify_hate(ARRAY['A', NULL, 'Sali', 'Randi saali mc', NULL, 'Kya yaar']);

-- equal to one-at-a-time classification, whatever the batch size
CREATE TEMP TABLE arr_t AS
SELECT b FROM (VALUES ('A'), ('Kya yaar'), ('✅✅'), ('Sali'), ('Inki madarchod'),
             ('Randi saali mc'), ('Tuzya aaichi puchi'), (''), ('hello world')) AS v(b);
SET gemmaclf.batch_size = 2;
SELECT classify_hate(array_agg(b ORDER BY b)) = array_agg(classify_hate(b) ORDER BY b) AS same_b2
FROM arr_t;
SET gemmaclf.batch_size = 64;
SELECT classify_hate(array_agg(b ORDER BY b)) = array_agg(classify_hate(b) ORDER BY b) AS same_b64
FROM arr_t;
RESET gemmaclf.batch_size;

-- empty arrays, all-NULL arrays, NULL array, bounds and dimensions kept
SELECT classify_hate(ARRAY[]::text[]) AS empty;
SELECT classify_hate(ARRAY[NULL, NULL]::text[]) AS all_null;
SELECT classify_hate(NULL::text[]) IS NULL AS null_array;
SELECT classify_hate('[0:1]={A,Sali}'::text[]) AS lower_bound_kept;
SELECT classify_hate(ARRAY[['A', 'Sali'], ['Randi saali mc', NULL]]) AS two_dims;
