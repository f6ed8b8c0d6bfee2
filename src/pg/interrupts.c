/* The bridge between PostgreSQL interrupts and the core. The core cannot run
 * CHECK_FOR_INTERRUPTS (no PostgreSQL headers, and a longjmp out of it would leak its buffers),
 * so it polls gcpg_interrupt_pending and returns GC_ECANCELED; we then let PostgreSQL act on the
 * interrupt here, outside the core.
 *
 * Only what ends the query stops the core: a cancel (QueryCancelPending, which statement_timeout
 * also sets) or a termination (ProcDiePending). Every other interrupt (a parallel worker's message
 * to its leader, a barrier, a catch-up) waits until the core call returns, and is serviced by the
 * next CHECK_FOR_INTERRUPTS: stopping the core for those would throw away its work, and made a
 * parallel query's leader fail with a spurious "canceled". */
#include "gemmaclf_pg.h"

#include "miscadmin.h"

/* A cancel that PostgreSQL decides not to act on (e.g. while cancels are held off) leaves us to
 * run the call again; enough for any such run, without looping forever. */
#define MAX_TRIES 1000

int gcpg_interrupt_pending(void *arg)
{
    (void)arg;
    return (QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED();
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
        /* Cancel, statement_timeout and termination throw here. */
        CHECK_FOR_INTERRUPTS();
        if (++tries > MAX_TRIES)
            return st;
    }
}
