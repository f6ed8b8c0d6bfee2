/* CPU stand-in for the CUDA runtime, so that the plugin's own code — kernels, launchers, memory
 * management, cuBLAS calls — can run and be checked against the CPU engine on a machine without a
 * GPU (scripts/cuda-emu-check.sh). It is a test tool, not a second backend: slow, single-threaded.
 *
 * Kernels run block after block; the threads of a block are cooperative fibers (ucontext) that
 * switch only at __syncthreads (all live threads of the block) and __shfl_xor_sync (all live
 * lanes of the warp), which is exactly the synchronisation the kernels rely on; a kernel that
 * waits on a barrier some threads never reach is reported as a deadlock. __shared__ variables
 * are statics, shared by the fibers of the running block. Device memory is host memory.
 *
 * The threads of a block run in a shuffled order (a new permutation at every barrier round,
 * seeded by GCU_EMU_SEED, default 1), and shared memory is poisoned before every block, so a
 * missing __syncthreads reads a value another thread has not written yet (or NaN) and changes
 * the result. GCU_EMU_RUNAHEAD=1 runs the lanes a shuffle releases first instead, so that one
 * warp runs ahead to the next barrier while the others wait (emu.cpp). Streams are not modelled
 * (every call completes before it returns).
 *
 * Environment: GCU_EMU_DEVICES (default 1) devices; GCU_EMU_FREE_MB (default 8192) what
 * cudaMemGetInfo reports free, to exercise the out-of-memory messages; GCU_EMU_CC (default 90)
 * the compute capability reported; GCU_EMU_SEED the thread-order seed; GCU_EMU_FAULT_AFTER=N
 * makes the N-th kernel launch after the variable is (re)set raise a sticky
 * cudaErrorIllegalAddress, as a kernel fault does on a GPU: every later call fails. A stream
 * synchronisation on a device whose flags lack cudaDeviceScheduleBlockingSync fails, so the
 * tests check that the plugin asks for blocking synchronisation. */
#ifndef GCU_EMU_CUDA_RUNTIME_H
#define GCU_EMU_CUDA_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* __shared__ variables are statics in one section, so that the emulator can poison all of them
 * (NaN bit patterns) before every block, as fresh shared memory holds whatever it held */
#define __shared__ static __attribute__((section("gcu_emu_shared")))

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
    unsigned x, y, z;
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

void __syncthreads(void);
float __shfl_xor_sync(unsigned mask, float v, int lane_mask);

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoDevice = 100,
    cudaErrorSetOnActiveProcess = 708,
    cudaErrorIllegalAddress = 700,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureUnsupported = 900
} cudaError_t;
typedef struct gcu_emu_stream *cudaStream_t;
typedef struct gcu_emu_graph *cudaGraph_t;
typedef struct gcu_emu_graph *cudaGraphExec_t;
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
};
#define cudaStreamNonBlocking 0x01
#define cudaDeviceScheduleAuto 0x00
#define cudaDeviceScheduleSpin 0x01
#define cudaDeviceScheduleYield 0x02
#define cudaDeviceScheduleBlockingSync 0x04
#define cudaDeviceScheduleMask 0x07

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
};

const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDevice(int *dev);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b);
cudaError_t cudaMalloc(void **p, size_t n);
template <typename T> cudaError_t cudaMalloc(T **p, size_t n)
{
    return cudaMalloc((void **)p, n);
}
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k,
                            cudaStream_t s = 0);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, cudaMemcpyKind k, cudaStream_t s = 0);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaSetDeviceFlags(unsigned flags);
cudaError_t cudaGetDeviceFlags(unsigned *flags);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamDestroy(cudaStream_t s);

/* Graphs: a capturing stream records its kernel launches and cuBLAS calls instead of running
 * them; cudaGraphLaunch replays them in order. A synchronisation or a copy on a capturing
 * stream fails and invalidates the capture (copies are not recorded: the plugin captures none).
 * GCU_EMU_NO_GRAPHS=1 makes cudaStreamBeginCapture fail (to test a fallback). */
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
/* Records work on s when it is capturing (returns 1), else returns 0. */
int gcu_emu_record(cudaStream_t s, const std::function<void()> &work);

/* Runs body once per thread of every block (see above). */
void gcu_emu_launch_fn(dim3 grid, dim3 block, const std::function<void()> &body);
template <typename F, typename... A>
void gcu_emu_launch(dim3 grid, dim3 block, cudaStream_t st, F f, A... args)
{
    std::function<void()> body([=]() { f(args...); });
    if (!gcu_emu_record(st, [=]() { gcu_emu_launch_fn(grid, block, body); }))
        gcu_emu_launch_fn(grid, block, body);
}

#endif
