/* CPU stand-in for the CUDA runtime and cuBLAS: see cuda_runtime.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <ucontext.h>

#include <vector>

#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_runtime.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

/* ---- fibers ------------------------------------------------------------------------------- */

/* DONE: the thread finished the current block (it resumes with the next one). */
enum { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };
#define STACK_BYTES (256 * 1024)

/* A fiber starts on its own stack through makecontext/swapcontext, once per launch, and runs the
 * kernel body for every block in turn; every switch is _setjmp/_longjmp, which (unlike
 * swapcontext) makes no system call. */
struct fiber {
    ucontext_t ctx;
    jmp_buf jb;
    char *stack;
    int state, started;
    float shfl_in, shfl_out;
    int shfl_mask;
};

static ucontext_t sched_uctx;
static jmp_buf sched_jb;
static std::vector<fiber> fibers;
static int cur;
static const std::function<void()> *cur_body;
static cudaError_t last_error = cudaSuccess;
/* a kernel fault: every later call fails with it, as with a sticky error on a GPU */
static cudaError_t sticky = cudaSuccess;

/* ---- thread order and shared memory ------------------------------------------------------- */

extern char __start_gcu_emu_shared[] __attribute__((weak));
extern char __stop_gcu_emu_shared[] __attribute__((weak));

/* All __shared__ variables to 0xff bytes: NaN for floats, -1 for integers. */
static void poison_shared(void)
{
    char *a = __start_gcu_emu_shared, *b = __stop_gcu_emu_shared;
    if (a && b > a)
        memset(a, 0xff, (size_t)(b - a));
}

static uint64_t rng_state = 1;
static char rng_seen[32] = "";

/* Re-seeds when GCU_EMU_SEED changes, so a test can set it between launches. */
static void rng_reseed(void)
{
    const char *v = getenv("GCU_EMU_SEED");
    if (!v)
        v = "1";
    if (strncmp(v, rng_seen, sizeof rng_seen - 1)) {
        snprintf(rng_seen, sizeof rng_seen, "%s", v);
        rng_state = strtoull(v, NULL, 10) * 0x9e3779b97f4a7c15ull + 1;
    }
}

/* GCU_EMU_RUNAHEAD=1: instead of picking a random runnable thread each time, run the lanes a
 * shuffle has just released first, so one warp runs ahead up to the next __syncthreads while the
 * others have not moved (a random pick almost never lets a warp pass several shuffles before
 * every other thread has reached its first one). The threads released by a block barrier, and
 * the block's initial order, are shuffled. */
static int runahead_mode(void)
{
    const char *v = getenv("GCU_EMU_RUNAHEAD");
    return v && !strcmp(v, "1");
}

static unsigned rng_next(unsigned n);

static void shuffle(std::vector<unsigned> &v)
{
    for (size_t i = v.size(); i > 1; i--) {
        unsigned j = rng_next((unsigned)i);
        unsigned t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static unsigned rng_next(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* GCU_EMU_FAULT_AFTER=N: the N-th launch after the variable was last (re)set faults. */
static char fault_seen[32] = "";
static long fault_countdown = -1;

static int fault_now(void)
{
    const char *v = getenv("GCU_EMU_FAULT_AFTER");
    if (!v)
        v = "";
    if (strncmp(v, fault_seen, sizeof fault_seen - 1)) {
        snprintf(fault_seen, sizeof fault_seen, "%s", v);
        fault_countdown = *v ? atol(v) : -1;
    }
    if (fault_countdown < 0)
        return 0;
    return --fault_countdown == 0;
}

static void yield_as(int state)
{
    fibers[cur].state = state;
    if (!_setjmp(fibers[cur].jb))
        _longjmp(sched_jb, 1);
}

static void fiber_main(void)
{
    for (;;) { /* abandoned (never returns) when the launch ends */
        (*cur_body)();
        yield_as(DONE);
    }
}

static void resume(int i)
{
    cur = i;
    if (_setjmp(sched_jb))
        return;
    if (fibers[i].started) {
        _longjmp(fibers[i].jb, 1);
    } else {
        fibers[i].started = 1;
        swapcontext(&sched_uctx, &fibers[i].ctx);
    }
}

void __syncthreads(void) { yield_as(AT_BLOCK_BARRIER); }

float __shfl_xor_sync(unsigned mask, float v, int lane_mask)
{
    (void)mask;
    fibers[cur].shfl_in = v;
    fibers[cur].shfl_mask = lane_mask;
    yield_as(AT_WARP_BARRIER);
    return fibers[cur].shfl_out;
}

/* Releases warp w's shuffle when all its live lanes have arrived (threads that finished the
 * block do not take part, as on the hardware); the released lanes go to `out`. */
static int release_warp(int w, int n, std::vector<unsigned> &out)
{
    int end = w + 32 < n ? w + 32 : n, lanes = 0, waiting = 0;
    for (int i = w; i < end; i++) {
        lanes += fibers[i].state != DONE;
        waiting += fibers[i].state == AT_WARP_BARRIER;
    }
    if (!waiting || waiting != lanes)
        return 0;
    for (int i = w; i < end; i++) {
        if (fibers[i].state != AT_WARP_BARRIER)
            continue;
        int src = w + ((i - w) ^ fibers[i].shfl_mask);
        if (src >= end || fibers[src].state != AT_WARP_BARRIER) {
            fprintf(stderr, "cuda-emu: shuffle from an inactive lane\n");
            abort();
        }
        fibers[i].shfl_out = fibers[src].shfl_in;
    }
    for (int i = w; i < end; i++)
        if (fibers[i].state == AT_WARP_BARRIER) {
            fibers[i].state = RUNNABLE;
            out.push_back((unsigned)i);
        }
    return 1;
}

/* Every barrier that can be released (warps first); 0 when none could be. */
static int release(int n, std::vector<unsigned> &out)
{
    int released = 0, live = 0, at_block = 0;
    for (int w = 0; w < n; w += 32)
        released |= release_warp(w, n, out);
    if (released)
        return 1;
    for (int i = 0; i < n; i++) {
        live += fibers[i].state != DONE;
        at_block += fibers[i].state == AT_BLOCK_BARRIER;
    }
    if (!at_block || at_block != live)
        return 0;
    for (int i = 0; i < n; i++)
        if (fibers[i].state == AT_BLOCK_BARRIER) {
            fibers[i].state = RUNNABLE;
            out.push_back((unsigned)i);
        }
    return 1;
}

void gcu_emu_launch_fn(dim3 grid, dim3 block, const std::function<void()> &body)
{
    unsigned n = block.x * block.y * block.z;
    if (sticky != cudaSuccess)
        return;
    if (fault_now()) {
        sticky = last_error = cudaErrorIllegalAddress;
        return;
    }
    if (n == 0 || n > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
        grid.z > 65535 || block.y != 1 || block.z != 1) {
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    if (fibers.size() < n) {
        size_t old = fibers.size();
        fibers.resize(n);
        for (size_t i = old; i < n; i++)
            fibers[i].stack = (char *)malloc(STACK_BYTES);
    }
    gridDim = grid;
    blockDim = block;
    cur_body = &body;
    for (unsigned i = 0; i < n; i++) {
        fiber &f = fibers[i];
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack;
        f.ctx.uc_stack.ss_size = STACK_BYTES;
        f.ctx.uc_link = NULL;
        makecontext(&f.ctx, fiber_main, 0);
        f.started = 0;
    }
    rng_reseed();
    const int runahead = runahead_mode();
    std::vector<unsigned> runnable;
    runnable.reserve(n);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx = {bx, by, bz};
                poison_shared();
                runnable.clear();
                for (unsigned i = 0; i < n; i++) {
                    fibers[i].state = RUNNABLE;
                    runnable.push_back(i);
                }
                if (runahead)
                    shuffle(runnable);
                /* one random runnable thread at a time, each up to its next barrier; a warp
                 * released from its shuffle goes on while other warps have not moved yet, as
                 * warps do on the hardware */
                for (;;) {
                    while (!runnable.empty()) {
                        unsigned k = runahead ? (unsigned)runnable.size() - 1
                                              : rng_next((unsigned)runnable.size());
                        unsigned i = runnable[k];
                        runnable[k] = runnable.back();
                        runnable.pop_back();
                        threadIdx = {i, 0, 0};
                        resume((int)i);
                        if (fibers[i].state == AT_WARP_BARRIER || fibers[i].state == DONE)
                            release_warp((int)(i & ~31u), (int)n, runnable);
                    }
                    int done = 0;
                    for (unsigned i = 0; i < n; i++)
                        done += fibers[i].state == DONE;
                    if (done == (int)n)
                        break;
                    if (!release((int)n, runnable)) {
                        fprintf(stderr, "cuda-emu: deadlock in block (%u,%u,%u)\n", bx, by, bz);
                        abort();
                    }
                    if (runahead)
                        shuffle(runnable);
                }
            }
}

/* ---- runtime -------------------------------------------------------------------------------- */

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

static int current_device;

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorSetOnActiveProcess: return "cannot set while device is active in this process";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    }
    return "unknown error";
}

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorSetOnActiveProcess: return "cudaErrorSetOnActiveProcess";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    }
    return "cudaErrorUnknown";
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = sticky;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = env_int("GCU_EMU_DEVICES", 1);
    return *n > 0 ? cudaSuccess : cudaErrorNoDevice;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || dev < 0 || dev >= n)
        return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "cuda-emu");
    p->totalGlobalMem = (size_t)16 << 30;
    p->major = env_int("GCU_EMU_CC", 90) / 10;
    p->minor = env_int("GCU_EMU_CC", 90) % 10;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || dev < 0 || dev >= n)
        return cudaErrorInvalidDevice;
    current_device = dev;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *dev)
{
    *dev = current_device;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    *free_b = (size_t)env_int("GCU_EMU_FREE_MB", 8192) << 20;
    *total_b = (size_t)16 << 30;
    return cudaSuccess;
}

/* Device and pinned host memory alike: fresh memory is poisoned so that reading what was never
 * written shows up as NaN. */
static cudaError_t poisoned_alloc(void **p, size_t n)
{
    if (sticky)
        return sticky;
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!*p)
        return cudaErrorMemoryAllocation;
    memset(*p, 0xff, n);
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t n) { return poisoned_alloc(p, n); }

cudaError_t cudaFree(void *p)
{
    free(p);
    return cudaSuccess;
}

struct gcu_emu_stream {
    std::vector<std::function<void()>> *capture; /* non-NULL while capturing */
    int invalidated;                            /* something unsupported happened in it */
};

/* A graph and its executable instance: the recorded work, replayed in order. */
struct gcu_emu_graph {
    std::vector<std::function<void()>> work;
};

/* Exported so that test_cuda_emu can see that graphs were captured and replayed (dlsym). */
extern "C" __attribute__((visibility("default"))) unsigned long gcu_emu_graph_launches,
    gcu_emu_graph_captures;
unsigned long gcu_emu_graph_launches, gcu_emu_graph_captures;

static int capturing(cudaStream_t s) { return s && s->capture; }

/* An operation the emulator does not record on a capturing stream: the capture is invalid. */
static cudaError_t capture_unsupported(cudaStream_t s)
{
    s->invalidated = 1;
    return last_error = cudaErrorStreamCaptureUnsupported;
}

int gcu_emu_record(cudaStream_t s, const std::function<void()> &work)
{
    if (!capturing(s))
        return 0;
    s->capture->push_back(work);
    return 1;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode)
{
    const char *v = getenv("GCU_EMU_NO_GRAPHS");
    if (sticky)
        return sticky;
    if (!s || capturing(s))
        return cudaErrorInvalidValue;
    if (v && !strcmp(v, "1"))
        return cudaErrorNotSupported;
    s->capture = new std::vector<std::function<void()>>();
    s->invalidated = 0;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
    *g = NULL;
    if (!capturing(s))
        return cudaErrorInvalidValue;
    std::vector<std::function<void()>> *w = s->capture;
    s->capture = NULL;
    if (s->invalidated || sticky) {
        delete w;
        return sticky ? sticky : cudaErrorStreamCaptureUnsupported;
    }
    *g = new gcu_emu_graph{*w};
    delete w;
    gcu_emu_graph_captures++;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long)
{
    if (sticky)
        return sticky;
    if (!g)
        return cudaErrorInvalidValue;
    *e = new gcu_emu_graph{g->work};
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s)
{
    if (sticky)
        return sticky;
    if (!e || capturing(s))
        return cudaErrorInvalidValue;
    gcu_emu_graph_launches++;
    for (auto &w : e->work)
        w();
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e)
{
    delete e;
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
    delete g;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind, cudaStream_t s)
{
    if (sticky)
        return sticky;
    if (capturing(s))
        return capture_unsupported(s);
    if (n && (!dst || !src))
        return cudaErrorInvalidValue;
    memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, cudaMemcpyKind, cudaStream_t s)
{
    if (sticky)
        return sticky;
    if (capturing(s))
        return capture_unsupported(s);
    if (width > dpitch || width > spitch)
        return cudaErrorInvalidValue;
    for (size_t r = 0; r < height; r++)
        memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
    *s = (cudaStream_t)calloc(1, sizeof(gcu_emu_stream));
    return *s ? cudaSuccess : cudaErrorMemoryAllocation;
}

#define MAX_DEV 64
static unsigned dev_flags[MAX_DEV];

cudaError_t cudaSetDeviceFlags(unsigned flags)
{
    if (sticky)
        return sticky;
    dev_flags[current_device % MAX_DEV] = flags;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceFlags(unsigned *flags)
{
    *flags = dev_flags[current_device % MAX_DEV];
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    if ((dev_flags[current_device % MAX_DEV] & cudaDeviceScheduleMask) !=
        cudaDeviceScheduleBlockingSync) {
        fprintf(stderr, "cuda-emu: synchronisation without cudaDeviceScheduleBlockingSync "
                        "(a waiting process would spin a core)\n");
        return cudaErrorInvalidValue;
    }
    return sticky ? sticky : last_error;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    if (capturing(s))
        return capture_unsupported(s);
    return cudaDeviceSynchronize();
}

cudaError_t cudaMallocHost(void **p, size_t n) { return poisoned_alloc(p, n); }

cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    if (s)
        delete s->capture;
    free(s);
    return cudaSuccess;
}

/* ---- cuBLAS ----------------------------------------------------------------------------- */

struct gcu_emu_blas {
    cudaStream_t stream;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = (cublasHandle_t)calloc(1, sizeof(gcu_emu_blas));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    return s == CUBLAS_STATUS_SUCCESS ? "success" : "emulated cuBLAS error";
}

const char *cublasGetStatusName(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

/* TF32: 10 explicit mantissa bits, round to nearest */
static float tf32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x1000u) & ~0x1fffu;
    memcpy(&f, &u, 4);
    return f;
}

static float load(const void *p, cudaDataType t, size_t i)
{
    return t == CUDA_R_16BF ? __bfloat162float(((const __nv_bfloat16 *)p)[i])
                            : ((const float *)p)[i];
}

/* op(X)[r][c] of a column-major X (ld), converted to float (TF32-rounded when asked) and stored
 * row-major in out[rows][cols], so that every dot product below is contiguous. */
static void unpack(const void *X, cudaDataType t, int ld, cublasOperation_t op, int rows,
                   int cols, int fast_tf32, std::vector<float> &out)
{
    out.resize((size_t)rows * cols);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            size_t i = op == CUBLAS_OP_N ? (size_t)c * ld + r : (size_t)r * ld + c;
            float v = load(X, t, i);
            out[(size_t)r * cols + c] = fast_tf32 ? tf32(v) : v;
        }
}

/* Column-major C[m x n] = alpha op(A) op(B) + beta C with op(A) m x k, op(B) k x n. */
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           float alpha, const void *A, cudaDataType at, int lda, const void *B,
                           cudaDataType bt, int ldb, float beta, float *C, int ldc, int fast_tf32)
{
    if (m < 0 || n < 0 || k < 0 || lda < (ta == CUBLAS_OP_N ? m : k) ||
        ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m || lda < 1 || ldb < 1 || ldc < 1)
        return CUBLAS_STATUS_INVALID_VALUE;
    std::vector<float> a, bt_; /* a = op(A) [m][k]; bt_ = op(B)^T [n][k] */
    unpack(A, at, lda, ta, m, k, fast_tf32, a);
    unpack(B, bt, ldb, tb == CUBLAS_OP_N ? CUBLAS_OP_T : CUBLAS_OP_N, n, k, fast_tf32, bt_);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            const float *x = &a[(size_t)i * k], *y = &bt_[(size_t)j * k];
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)x[p] * (double)y[p];
            float *c = C + (size_t)j * ldc + i;
            *c = (float)(alpha * s + (beta != 0.0f ? beta * *c : 0.0f));
        }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (sticky)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    const float al = *alpha, be = *beta; /* by value, as cuBLAS reads host scalars at the call */
    if (gcu_emu_record(h->stream, [=]() {
            if (!sticky)
                gemm(ta, tb, m, n, k, al, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, be, C, ldc, 0);
        }))
        return CUBLAS_STATUS_SUCCESS;
    return gemm(ta, tb, m, n, k, al, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, be, C, ldc, 0);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (sticky)
        return CUBLAS_STATUS_EXECUTION_FAILED;
    /* the combinations cuBLAS documents for these types */
    if (ct != CUDA_R_32F || at != bt ||
        (compute == CUBLAS_COMPUTE_32F_FAST_TF32 && at != CUDA_R_32F) ||
        (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const int tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    if (gcu_emu_record(h->stream, [=]() {
            if (!sticky)
                gemm(ta, tb, m, n, k, al, A, at, lda, B, bt, ldb, be, (float *)C, ldc, tf32);
        }))
        return CUBLAS_STATUS_SUCCESS;
    return gemm(ta, tb, m, n, k, al, A, at, lda, B, bt, ldb, be, (float *)C, ldc, tf32);
}
