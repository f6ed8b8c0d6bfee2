-- gemmaclf demo script (run by scripts/demo.sh inside a throwaway cluster)
\pset footer off
\getenv comments_file GC_DEMO_COMMENTS
CREATE EXTENSION gemmaclf;

\echo
\echo '== The model (gemmaclf_model_info())'
SELECT key, value FROM jsonb_each(gemmaclf_model_info())
WHERE key IN ('model_path', 'architecture', 'parameters', 'dtype', 'labels', 'device', 'load_ms');

\echo '== One comment at a time: classify_hate(text), classify_hate_scores(text)'
SELECT classify_hate('Kya yaar, kitna accha video hai') AS label;
SELECT jsonb_pretty(classify_hate_scores('Kya yaar, kitna accha video hai')) AS scores;

\echo '== A moderated table: a trigger labels every new or edited comment'
CREATE TABLE comments (
    id serial PRIMARY KEY,
    body text NOT NULL,
    gold text,                 -- the data set's human label, for comparison
    hate_label text,
    hate_scores jsonb
);
CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON comments
    FOR EACH ROW EXECUTE FUNCTION gemmaclf_flag_hate('body', 'hate_label', 'hate_scores');
\echo 'CREATE TRIGGER flag_hate BEFORE INSERT OR UPDATE OF body ON comments FOR EACH ROW'
\echo '    EXECUTE FUNCTION gemmaclf_flag_hate(''body'', ''hate_label'', ''hate_scores'');'

CREATE TEMP TABLE dev AS
SELECT n, l::jsonb->>'text' AS body, l::jsonb->>'label' AS gold
FROM regexp_split_to_table(pg_read_file(:'comments_file'), E'\n') WITH ORDINALITY AS x(l, n)
WHERE l <> '';

\timing on
INSERT INTO comments (body, gold) SELECT body, gold FROM dev WHERE n <= 10 ORDER BY n;
\timing off
SELECT id, left(body, 60) AS body, hate_label,
       round((hate_scores->'scores'->>hate_label)::numeric, 3) AS p
FROM comments ORDER BY id;

\echo '== A backlog: 500 comments loaded without the trigger, then labelled in batches'
ALTER TABLE comments DISABLE TRIGGER flag_hate;
INSERT INTO comments (body, gold) SELECT body, gold FROM dev WHERE n > 10 AND n <= 510 ORDER BY n;
ALTER TABLE comments ENABLE TRIGGER flag_hate;
\echo 'CALL gemmaclf_classify_table(''comments'', ''body'', ''hate_label'', 100, ''hate_scores'');'
\timing on
CALL gemmaclf_classify_table('comments', 'body', 'hate_label', 100, 'hate_scores');
\timing off

\echo '== Moderation queries'
SELECT hate_label, count(*) AS comments,
       round(100.0 * count(*) FILTER (WHERE gold = hate_label) / count(*), 1) AS gold_agrees_pct
FROM comments GROUP BY hate_label ORDER BY comments DESC;
\echo 'Most confident Extreme Hate comments:'
SELECT id, left(body, 70) AS body,
       round((hate_scores->'scores'->>'Extreme Hate')::numeric, 3) AS p_extreme
FROM comments WHERE hate_label = 'Extreme Hate'
ORDER BY p_extreme DESC LIMIT 5;
\echo 'Batch classification of an array: classify_hate(text[])'
SELECT classify_hate(ARRAY['bahut badhiya', NULL, 'Kya yaar']) AS labels;
