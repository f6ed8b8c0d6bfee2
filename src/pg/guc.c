/* The gemmaclf.* settings. model_path is superuser-only because the server reads the files it
 * names, precision because it can change a label; the others only change speed or how much of a
 * comment is read. */
#include "gemmaclf_pg.h"

#include "utils/guc.h"

char *gemmaclf_model_path = NULL;
int gemmaclf_device = GC_DEVICE_AUTO;
int gemmaclf_threads = 1;
int gemmaclf_precision = GC_PRECISION_F32;
int gemmaclf_max_input_tokens = GC_DEFAULT_MAX_INPUT_TOKENS;
int gemmaclf_batch_size = GC_DEFAULT_BATCH_SIZE;

static const struct config_enum_entry device_options[] = {
    {"auto", GC_DEVICE_AUTO, false},
    {"cpu", GC_DEVICE_CPU, false},
    {"cuda", GC_DEVICE_CUDA, false},
    {NULL, 0, false}};

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
                            "Parallel workers always use one thread.", &gemmaclf_threads, 1, 0,
                            256, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.max_input_tokens",
                            "Comment tokens kept per text; longer comments keep their first ones.",
                            "At most 8192, and never more than the model's context allows.",
                            &gemmaclf_max_input_tokens, GC_DEFAULT_MAX_INPUT_TOKENS, 1,
                            8192, PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomIntVariable("gemmaclf.batch_size", "Texts per forward pass in batched calls.",
                            NULL, &gemmaclf_batch_size, GC_DEFAULT_BATCH_SIZE, 1, 4096,
                            PGC_USERSET, 0, NULL, NULL, NULL);
    MarkGUCPrefixReserved("gemmaclf");
}
