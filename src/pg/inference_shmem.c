/* The inference worker's shared memory (layout and protocol in inference.h): requested and
 * created with shared_preload_libraries only, sized once at postmaster start. */
#include "inference.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

gcpg_infer_shared *gcpg_infer = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static int n_slots(void)
{
    /* one request in flight per backend: MaxBackends slots never run out */
    return gemmaclf_inference_slots > 0 ? gemmaclf_inference_slots : MaxBackends;
}

static Size shared_size(void)
{
    return add_size(offsetof(gcpg_infer_shared, slots),
                    mul_size(n_slots(), MAXALIGN(sizeof(gcpg_infer_slot))));
}

static void request_shmem(void)
{
    if (prev_shmem_request_hook)
        prev_shmem_request_hook();
    RequestAddinShmemSpace(shared_size());
    RequestNamedLWLockTranche("gemmaclf inference", 1);
}

static void startup_shmem(void)
{
    bool found;

    if (prev_shmem_startup_hook)
        prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    gcpg_infer = ShmemInitStruct("gemmaclf inference", shared_size(), &found);
    if (!found) {
        memset(gcpg_infer, 0, offsetof(gcpg_infer_shared, slots));
        gcpg_infer->lock = &(GetNamedLWLockTranche("gemmaclf inference"))->lock;
        gcpg_infer->n_slots = n_slots();
        gcpg_infer->slot_size = MAXALIGN(sizeof(gcpg_infer_slot));
        for (int i = 0; i < gcpg_infer->n_slots; i++) {
            gcpg_infer_slot *s = gcpg_infer_slot_at(i);

            memset(s, 0, offsetof(gcpg_infer_slot, text));
            pg_atomic_init_u32(&s->state, SLOT_FREE);
        }
    }
    LWLockRelease(AddinShmemInitLock);
}

void gcpg_inference_shmem_init(void)
{
    if (!process_shared_preload_libraries_in_progress)
        return;
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = request_shmem;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup_shmem;
}

void gcpg_inference_init(void)
{
    if (!process_shared_preload_libraries_in_progress ||
        gemmaclf_inference_worker == GCPG_INFERENCE_WORKER_OFF)
        return;
    gcpg_inference_shmem_init();
    gcpg_inference_worker_register();
}
