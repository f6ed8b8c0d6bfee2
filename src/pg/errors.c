/* Core status codes as PostgreSQL errors: the SQLSTATE clients can act on, and the hint that
 * tells them what to change. */
#include "gemmaclf_pg.h"

int gcpg_sqlstate(gc_status st)
{
    switch (st) {
    case GC_EINVAL: return ERRCODE_INVALID_PARAMETER_VALUE;
    case GC_ENOMEM: return ERRCODE_OUT_OF_MEMORY;
    case GC_ECANCELED: return ERRCODE_QUERY_CANCELED;
    case GC_EDEVICE: return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;
    case GC_EIO: return ERRCODE_UNDEFINED_FILE;
    case GC_ENUMERIC: return ERRCODE_FLOATING_POINT_EXCEPTION;
    default: return ERRCODE_CONFIG_FILE_ERROR;
    }
}

int gcpg_status_hint(gc_status st)
{
    switch (st) {
    /* A device error is the one a user can fix by a setting: fall back to the CPU. */
    case GC_EDEVICE: return errhint("Set gemmaclf.device = 'cpu'.");
    case GC_ENUMERIC:
        return errhint("The model's weights are broken (NaN or infinite values, or values that "
                       "overflow): replace the model gemmaclf.model_path names.");
    default: return 0;
    }
}
