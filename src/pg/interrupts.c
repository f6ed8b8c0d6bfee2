/* The bridge between PostgreSQL interrupts and the core. The core cannot run
 * CHECK_FOR_INTERRUPTS (no PostgreSQL headers, and a longjmp out of it would leak its buffers),
 * so it polls gcpg_interrupt_pending and returns GC_ECANCELED; we then let PostgreSQL act on the
 * interrupt here, outside the core. */
#include "gemmaclf_pg.h"

#include "miscadmin.h"

/* Enough for any run of interrupts that do not end the query, without looping forever. */
#define MAX_TRIES 1000

int gcpg_interrupt_pending(void *arg)
{
    (void)arg;
    return InterruptPending && INTERRUPTS_CAN_BE_PROCESSED();
}

gc_status gcpg_run_interruptible(gc_status (*call)(void *arg), void *arg)
{
    gc_status st;
    int tries = 0;

    for (;;) {
        CHECK_FOR_INTERRUPTS();
        st = call(arg);
        if (st != GC_ECANCELED)
            return st;
        /* Cancel and statement_timeout throw here; interrupts that do not end the query
         * (e.g. a parallel-worker message) leave us to run the call again. */
        CHECK_FOR_INTERRUPTS();
        if (++tries > MAX_TRIES)
            return st;
    }
}
