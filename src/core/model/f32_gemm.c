#include "model/f32_gemm.h"

#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/blas_core.h"

static int chosen = -1; /* gc_f32_gemm, or -1 before the first call */
static int held;

static gc_f32_gemm decide(void)
{
    const char *env = getenv("GEMMACLF_F32_GEMM");
    if (env && !strcmp(env, "openblas"))
        return GC_F32_GEMM_OPENBLAS;
    if (env && !strcmp(env, "onednn"))
        return GC_F32_GEMM_ONEDNN;
    return gc_blas_core_better() ? GC_F32_GEMM_ONEDNN : GC_F32_GEMM_OPENBLAS;
}

/* A backend is single-threaded and the CLI decides before its threads start: no lock. */
gc_f32_gemm gc_f32_gemm_choice(void)
{
    if (chosen < 0)
        chosen = (int)decide();
    return (gc_f32_gemm)chosen;
}

const char *gc_f32_gemm_name(gc_f32_gemm g) { return g == GC_F32_GEMM_ONEDNN ? "onednn" : "openblas"; }

void gc_f32_gemm_set(gc_f32_gemm g) { chosen = (int)g; }

void gc_f32_gemm_hold(int hold) { held = hold; }

int gc_f32_gemm_onednn_now(void) { return !held && gc_f32_gemm_choice() == GC_F32_GEMM_ONEDNN; }

void gc_f32_gemm_xwt(float *y, const float *x, const float *w, int T, int n, int k, int threads)
{
    if (gc_f32_gemm_onednn_now()) {
        omp_set_num_threads(threads > 0 ? threads : omp_get_num_procs());
        if (dnnl_sgemm('N', 'T', T, n, k, 1.0f, x, k, w, k, 0.0f, y, n) == dnnl_success)
            return;
        /* oneDNN refused (out of memory for its packing buffers): OpenBLAS computes it */
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
}
