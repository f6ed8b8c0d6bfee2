-- gemmaclf 0.2.0 (full install script; upgrades from 0.1.0 run gemmaclf--0.1.0--0.2.0.sql)
\echo Use "CREATE EXTENSION gemmaclf" to load this file. \quit

-- IMMUTABLE: the label depends only on the text and the model. After changing the model
-- (gemmaclf.model_path or a new bundled model) re-classify stored labels yourself, e.g.
-- UPDATE t SET label = NULL; CALL gemmaclf_classify_table('t', 'body', 'label');
-- and REINDEX indexes on classify_hate(...) expressions.
CREATE FUNCTION classify_hate(text) RETURNS text
    AS 'MODULE_PATHNAME', 'classify_hate'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION classify_hate(text) IS
    'label of a comment: Not Hate, Hate or Extreme Hate (NULL for NULL)';

CREATE FUNCTION classify_hate(text[]) RETURNS text[]
    AS 'MODULE_PATHNAME', 'classify_hate_array'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION classify_hate(text[]) IS
    'labels of many comments in batches of gemmaclf.batch_size (same order, NULLs kept)';

CREATE FUNCTION classify_hate_scores(text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'classify_hate_scores'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 10000;
COMMENT ON FUNCTION classify_hate_scores(text) IS
    '{"label": ..., "scores": {label: probability}} of a comment';

CREATE FUNCTION gemmaclf_flag_hate() RETURNS trigger
    AS 'MODULE_PATHNAME', 'gemmaclf_flag_hate'
    LANGUAGE C;
COMMENT ON FUNCTION gemmaclf_flag_hate() IS
    'BEFORE INSERT OR UPDATE row trigger: gemmaclf_flag_hate(text_column, label_column [, scores_column])';

CREATE PROCEDURE gemmaclf_classify_table(rel regclass, text_column name, label_column name,
                                         batch_size int DEFAULT 256,
                                         scores_column name DEFAULT NULL)
    AS 'MODULE_PATHNAME', 'gemmaclf_classify_table'
    LANGUAGE C;
COMMENT ON PROCEDURE gemmaclf_classify_table(regclass, name, name, int, name) IS
    'label rows whose label is NULL, committing per batch (resumable; sessions can share a table)';

CREATE FUNCTION gemmaclf_model_info() RETURNS jsonb
    AS 'MODULE_PATHNAME', 'gemmaclf_model_info'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION gemmaclf_model_info() IS
    'the loaded model: path, architecture, parameters, dtype, labels, device, load time';

-- ---- inference worker (issue 12) ----
CREATE FUNCTION gemmaclf_inference_status(
    OUT pid int, OUT state text, OUT device text, OUT model_path text, OUT batch_size int,
    OUT batch_wait_ms float8, OUT batches bigint, OUT requests bigint, OUT texts bigint,
    OUT mean_batch_size float8, OUT mean_queue_wait_ms float8, OUT max_queue_wait_ms float8,
    OUT errors bigint, OUT discarded bigint, OUT queued int, OUT in_progress int,
    OUT gpu_memory_bytes bigint, OUT started_at timestamptz, OUT error text)
    AS 'MODULE_PATHNAME', 'gemmaclf_inference_status'
    LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION gemmaclf_inference_status() IS
    'the inference worker: pid, state, device, model, batches, mean batch size, queue wait, errors';
CREATE VIEW gemmaclf_inference_status AS SELECT * FROM gemmaclf_inference_status();
COMMENT ON VIEW gemmaclf_inference_status IS 'the inference worker (gemmaclf_inference_status())';

CREATE FUNCTION gemmaclf_inference_hold(hold bool) RETURNS bool
    AS 'MODULE_PATHNAME', 'gemmaclf_inference_hold'
    LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION gemmaclf_inference_hold(bool) FROM PUBLIC;
COMMENT ON FUNCTION gemmaclf_inference_hold(bool) IS
    'test hook (superuser): true makes the inference worker keep the requests it takes until false';
