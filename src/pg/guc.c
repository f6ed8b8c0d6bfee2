/* The gemmaclf.* settings. classify_hate is IMMUTABLE: a CHECK constraint, an expression index and
 * a stored label all assume that a text always gets the same label and scores. So every setting
 * that can change a label or a score is superuser-only (PGC_SUSET): model_path (also because the
 * server reads the files it names), max_input_tokens (how much of a comment is read), precision
 * (bf16 / int8 arithmetic of the CPU engine) and the CUDA settings below. Those that only change
 * speed (device, threads, batch_size) are for everyone. */
#include "gemmaclf_pg.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "model/cuda_plugin.h"

char *gemmaclf_model_path = NULL;
int gemmaclf_device = GC_DEVICE_AUTO;
int gemmaclf_threads = 1;
int gemmaclf_precision = GC_PRECISION_F32;
int gemmaclf_max_input_tokens = GC_DEFAULT_MAX_INPUT_TOKENS;
int gemmaclf_batch_size = GC_DEFAULT_BATCH_SIZE;
/* background labelling (issue 11) */
int gemmaclf_watch_workers = 0;
char *gemmaclf_watch_database = NULL;

static const struct config_enum_entry device_options[] = {
    {"auto", GC_DEVICE_AUTO, false},
    {"cpu", GC_DEVICE_CPU, false},
    {"cuda", GC_DEVICE_CUDA, false},
    {NULL, 0, false}};

/* ---- inference worker (issue 12) ---- */
int gemmaclf_inference_worker = GCPG_INFERENCE_WORKER_AUTO;
int gemmaclf_inference_slots = 0;
double gemmaclf_batch_wait = GCPG_DEFAULT_BATCH_WAIT_MS;
bool gemmaclf_use_inference_worker = true;

static const struct config_enum_entry inference_worker_options[] = {
    {"auto", GCPG_INFERENCE_WORKER_AUTO, false},
    {"on", GCPG_INFERENCE_WORKER_ON, false},
    {"off", GCPG_INFERENCE_WORKER_OFF, false},
    {NULL, 0, false}};

/* The worker's server settings exist only when the postmaster loads the library: PostgreSQL
 * refuses to create a PGC_POSTMASTER setting later (a backend loading gemmaclf on first use
 * would fail), and without shared_preload_libraries there is no worker. */
static void gcpg_guc_init_inference_server(void)
{
    DefineCustomEnumVariable(
        "gemmaclf.inference_worker",
        "One background worker classifies for every backend: auto, on or off.",
        "Needs shared_preload_libraries = 'gemmaclf'. auto: only when a GPU is usable; on: also "
        "on the CPU.",
        &gemmaclf_inference_worker, GCPG_INFERENCE_WORKER_AUTO, inference_worker_options,
        PGC_POSTMASTER, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.inference_slots",
                            "Request slots of the inference worker (0: max backends).",
                            "One per backend classifying at once; each takes about 131 kB of "
                            "shared memory.",
                            &gemmaclf_inference_slots, 0, 0, 65536, PGC_POSTMASTER, 0, NULL,
                            NULL, NULL);
}

static void gcpg_guc_init_inference(void)
{
    if (process_shared_preload_libraries_in_progress)
        gcpg_guc_init_inference_server();
    DefineCustomRealVariable("gemmaclf.batch_wait",
                             "How long the inference worker waits for more requests before a "
                             "forward pass that is short of gemmaclf.batch_size texts.",
                             "Rounded up to whole milliseconds; 0: run what is queued at once.",
                             &gemmaclf_batch_wait, GCPG_DEFAULT_BATCH_WAIT_MS, 0, 1000,
                             PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
    DefineCustomBoolVariable("gemmaclf.use_inference_worker",
                             "Send this session's classifications to the inference worker when "
                             "it serves the session's model.",
                             "off: classify in this backend (same labels; scores within 1e-5).",
                             &gemmaclf_use_inference_worker, true, PGC_USERSET, 0, NULL, NULL,
                             NULL);
}

static const struct config_enum_entry precision_options[] = {
    {"f32", GC_PRECISION_F32, false},
    {"bf16", GC_PRECISION_BF16, false},
    {"int8", GC_PRECISION_INT8, false},
    {NULL, 0, false}};

void gcpg_guc_init(void)
{
    DefineCustomStringVariable(
        "gemmaclf.model_path", "Directory of the Gemma 3 classifier model (empty: bundled model).",
        "Superuser only: the server reads the files it names. A change reloads the model on the "
        "next use in each session.",
        &gemmaclf_model_path, "", PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomEnumVariable("gemmaclf.device", "Where the forward pass runs: auto, cpu or cuda.",
                             "auto uses CUDA when the plugin and a GPU are available.",
                             &gemmaclf_device, GC_DEVICE_AUTO, device_options, PGC_USERSET, 0,
                             NULL, NULL, NULL);
    DefineCustomEnumVariable("gemmaclf.precision",
                             "Arithmetic of the CPU engine's linear layers: f32, bf16 or int8.",
                             "Superuser only: bf16 and int8 can change a label. They need "
                             "AVX512-BF16/AMX (bf16) or AVX512-VNNI/AMX (int8); without them the "
                             "session warns and runs f32.",
                             &gemmaclf_precision, GC_PRECISION_F32, precision_options, PGC_SUSET,
                             0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.threads", "BLAS threads per backend (0: OpenBLAS default).",
                            "At most the cores the backend may run on (larger values are capped); "
                            "parallel workers always use one thread.", &gemmaclf_threads, 1, 0,
                            256, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.max_input_tokens",
                            "Comment tokens kept per text; longer comments keep their first ones.",
                            "Superuser only: it can change a label. At most 8192, and never more "
                            "than the model's context allows.",
                            &gemmaclf_max_input_tokens, GC_DEFAULT_MAX_INPUT_TOKENS, 1,
                            8192, PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.batch_size", "Texts per forward pass in batched calls.",
                            NULL, &gemmaclf_batch_size, GC_DEFAULT_BATCH_SIZE, 1, 4096,
                            PGC_USERSET, 0, NULL, NULL, NULL);
    /* Background labelling (issue 11). PGC_POSTMASTER settings exist only when the postmaster
     * loads gemmaclf from shared_preload_libraries (PostgreSQL refuses to define them later);
     * elsewhere gemmaclf.workers stays 0 and gemmaclf_watch() says what to set. */
    if (process_shared_preload_libraries_in_progress) {
        DefineCustomIntVariable("gemmaclf.workers",
                                "Background workers that label the rows of watched tables.",
                                "Needs shared_preload_libraries = 'gemmaclf'; 0 turns background "
                                "labelling off. Each is one of max_worker_processes.",
                                &gemmaclf_watch_workers, 1, 0, GCPG_WATCH_MAX_WORKERS,
                                PGC_POSTMASTER, 0, NULL, NULL, NULL);
        DefineCustomStringVariable("gemmaclf.database",
                                   "The database whose watched tables the workers label.",
                                   "gemmaclf_watch() works in this database only.",
                                   &gemmaclf_watch_database, "postgres", PGC_POSTMASTER, 0,
                                   NULL, NULL, NULL);
    }
    gcpg_guc_cuda_init();
    gcpg_guc_init_inference();
    MarkGUCPrefixReserved("gemmaclf");
}

/* ---- CUDA device and precision (issue 12, part 5) -------------------------------------------
 * Superuser-only: the precision can change a label, and the device number picks hardware
 * shared by every session of the server. A change starts a new session (and CUDA upload) in
 * each backend on its next call. */
int gemmaclf_cuda_device = 0;
int gemmaclf_cuda_precision = GC_CUDA_F32;

static const struct config_enum_entry cuda_precision_options[] = {
    {"f32", GC_CUDA_F32, false},
    {"tf32", GC_CUDA_TF32, false},
    {"bf16", GC_CUDA_BF16, false},
    {NULL, 0, false}};

void gcpg_guc_cuda_init(void)
{
    DefineCustomIntVariable("gemmaclf.cuda_device", "CUDA device number used by gemmaclf.device "
                            "= cuda or auto (0: the first).",
                            "Superuser only. The device must have compute capability 8.0 or "
                            "newer; under auto a missing or older device means the CPU.",
                            &gemmaclf_cuda_device, 0, 0, 63, PGC_SUSET, 0, NULL, NULL, NULL);
    DefineCustomEnumVariable("gemmaclf.cuda_precision", "Arithmetic of the large matrix products "
                             "on the GPU: f32, tf32 or bf16.",
                             "Superuser only: tf32 and bf16 are faster but can change a label. "
                             "Norms, softmax and the label logits stay F32 in every mode.",
                             &gemmaclf_cuda_precision, GC_CUDA_F32, cuda_precision_options,
                             PGC_SUSET, 0, NULL, NULL, NULL);
}
