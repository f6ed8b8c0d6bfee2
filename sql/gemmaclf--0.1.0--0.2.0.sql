-- gemmaclf 0.1.0 -> 0.2.0 (ALTER EXTENSION gemmaclf UPDATE)
\echo Use "ALTER EXTENSION gemmaclf UPDATE TO '0.2.0'" to load this file. \quit

-- Every object added or changed in 0.2.0 is created here AND in gemmaclf--0.2.0.sql;
-- sql/upgrade.sql checks that a fresh 0.2.0 and an upgraded 0.1.0 have the same objects.

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
