/* The extension's entry point: like pgvector's, _PG_init only asks each concept to set itself
 * up (gemmaclf_pg.h has the file map). */
#include "gemmaclf_pg.h"
#include "watch.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void _PG_init(void)
{
    gcpg_guc_init();
    gcpg_session_preload();
    gcpg_watch_init();
    gcpg_inference_init();
}
