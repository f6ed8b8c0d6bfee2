-- Prototype (issue 15): gemmaclf_classify_table for Citus tables, in PL/pgSQL, tested by
-- test/citus/run.sh. Same arguments and NOTICEs as the C procedure gemmaclf_classify_table.
--
-- Hash-distributed table: rounds; in each round every shard labels one batch of its own rows on
-- the node that holds it (run_command_on_shards: one new connection per shard, all shards in
-- parallel), as one statement on the shard:
--     WITH b AS (SELECT ctid, text FROM shard WHERE label IS NULL AND text IS NOT NULL
--                LIMIT n FOR UPDATE SKIP LOCKED)
--     UPDATE shard SET label = ... classify_hate(text[]) of the batch (one batched pass) ...
-- Each shard command runs in its own transaction on its worker and commits there, whatever the
-- coordinator's transaction does: progress is committed batch by batch, a cancelled or failed run
-- resumes where it stopped, concurrent runs share the rows (SKIP LOCKED), and no text goes
-- through the coordinator. Rounds stop when no shard finds an unlocked unlabelled row.
--
-- Reference table: every placement must stay identical, so no SKIP LOCKED and no ctid (both
-- differ per placement); batches of the lowest primary-key values without a label, as ordinary
-- UPDATEs that Citus applies to every placement (each node classifies every row).
CREATE OR REPLACE PROCEDURE gemmaclf_citus_classify_table(rel regclass, text_column name,
        label_column name, batch_size int DEFAULT 256, scores_column name DEFAULT NULL)
LANGUAGE plpgsql AS $proc$
DECLARE
    method "char";
    repmodel "char";
    total bigint;
    done bigint := 0;
    n bigint;
    pk name;
    cmd text;
    r record;
    started timestamptz := clock_timestamp();
    rate float8;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'gemmaclf_classify_table: batch_size must be at least 1';
    END IF;
    SELECT p.partmethod, p.repmodel INTO method, repmodel
    FROM pg_dist_partition p WHERE p.logicalrelid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'gemmaclf_citus_classify_table: % is not a Citus table', rel
            USING HINT = 'Use gemmaclf_classify_table.';
    END IF;
    EXECUTE format('SELECT count(*) FROM %s WHERE %I IS NULL AND %I IS NOT NULL',
                   rel, label_column, text_column) INTO total;
    RAISE NOTICE 'gemmaclf_classify_table: % rows to classify', total;
    COMMIT;   -- per batch from here on; refuses (invalid transaction termination) inside BEGIN

    IF method = 'h' THEN
        -- %%1$s: the shard's name, filled in by run_command_on_shards
        IF scores_column IS NULL THEN
            cmd := format($c$WITH b AS (SELECT array_agg(ctid) AS tids, array_agg(%1$I::text) AS texts
                 FROM (SELECT ctid, %1$I FROM %%1$s WHERE %2$I IS NULL AND %1$I IS NOT NULL
                       LIMIT %3$s FOR UPDATE SKIP LOCKED) x)
                UPDATE %%1$s t SET %2$I = u.label
                FROM b, unnest(b.tids, classify_hate(b.texts)) AS u(tid, label)
                WHERE t.ctid = u.tid$c$, text_column, label_column, batch_size);
        ELSE
            cmd := format($c$UPDATE %%1$s t SET %2$I = x.s->>'label', %4$I = x.s
                FROM (SELECT y.ctid AS tid, classify_hate_scores(y.%1$I::text) AS s
                      FROM (SELECT ctid, %1$I FROM %%1$s WHERE %2$I IS NULL AND %1$I IS NOT NULL
                            LIMIT %3$s FOR UPDATE SKIP LOCKED) y) x
                WHERE t.ctid = x.tid$c$, text_column, label_column, batch_size, scores_column);
        END IF;
        LOOP
            n := 0;
            FOR r IN SELECT * FROM run_command_on_shards(rel, cmd) LOOP
                IF NOT r.success THEN
                    RAISE EXCEPTION 'gemmaclf_classify_table: shard % failed: %', r.shardid, r.result
                        USING HINT = 'Batches already done are committed; call the procedure again to go on.';
                END IF;
                n := n + split_part(r.result, ' ', 2)::bigint;
            END LOOP;
            EXIT WHEN n = 0;
            done := done + n;
            rate := done / greatest(extract(epoch FROM clock_timestamp() - started), 1e-3);
            RAISE NOTICE 'gemmaclf_classify_table: % of % rows classified', done, total
                USING DETAIL = format('%s rows/s, about %s s left', round(rate::numeric, 1),
                                      round(greatest(total - done, 0) / rate));
            COMMIT;
        END LOOP;
    ELSIF method = 'n' AND repmodel = 't' THEN
        SELECT a.attname INTO pk
        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = rel AND i.indisprimary AND i.indnkeyatts = 1;
        IF pk IS NULL THEN
            RAISE EXCEPTION 'gemmaclf_classify_table: reference table % has no single-column primary key', rel
                USING HINT = format('Label it in one statement: UPDATE %s SET %I = classify_hate(%I) WHERE %I IS NULL;',
                                    rel, label_column, text_column, label_column);
        END IF;
        cmd := format($c$UPDATE %1$s t SET %3$I = x.s->>'label'%5$s
            FROM (SELECT %4$I AS k, %6$s AS s FROM %1$s WHERE %3$I IS NULL AND %2$I IS NOT NULL
                  ORDER BY %4$I LIMIT %7$s) x
            WHERE t.%4$I = x.k$c$,
            rel, text_column, label_column, pk,
            CASE WHEN scores_column IS NULL THEN '' ELSE format(', %I = x.s', scores_column) END,
            CASE WHEN scores_column IS NULL
                 THEN format('jsonb_build_object(''label'', classify_hate(%I::text))', text_column)
                 ELSE format('classify_hate_scores(%I::text)', text_column) END,
            batch_size);
        LOOP
            EXECUTE cmd;
            GET DIAGNOSTICS n = ROW_COUNT;
            EXIT WHEN n = 0;
            done := done + n;
            rate := done / greatest(extract(epoch FROM clock_timestamp() - started), 1e-3);
            RAISE NOTICE 'gemmaclf_classify_table: % of % rows classified', done, total
                USING DETAIL = format('%s rows/s, about %s s left', round(rate::numeric, 1),
                                      round(greatest(total - done, 0) / rate));
            COMMIT;
        END LOOP;
    ELSE
        RAISE EXCEPTION 'gemmaclf_citus_classify_table: % is neither hash-distributed nor a reference table', rel
            USING HINT = 'Use gemmaclf_classify_table.';
    END IF;
END
$proc$;
