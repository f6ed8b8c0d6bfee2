/* Differences between the PostgreSQL major versions gemmaclf supports, in this one place:
 * code elsewhere in src/pg uses the names defined here, never PG_VERSION_NUM itself.
 * Tested on 15 (Debian 12) and 18 (scripts/pg-test.sh); 16 and 17 lie between the two.
 * Add a switch as `#if PG_VERSION_NUM >= 180000 ... #else ... #endif` with a comment on what
 * changed in which version. Included by gemmaclf_pg.h, right after postgres.h. */
#ifndef GEMMACLF_PG_COMPAT_H
#define GEMMACLF_PG_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "gemmaclf needs PostgreSQL 15 or later"
#endif

/* 16 moved the varlena access macros (VARDATA_ANY, VARSIZE_ANY_EXHDR, ...) out of postgres.h
 * into varatt.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* Background labelling (issue 11). */
/* Ownership checks: one function per object class until 15, object_ownercheck() since 16
 * (use sites include utils/acl.h and catalog/pg_class.h). */
#if PG_VERSION_NUM >= 160000
#define gcpg_rel_ownercheck(relid, roleid) object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define gcpg_rel_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif
/* A named wait event for the workers' sleep (pg_stat_activity.wait_event) since 17; before,
 * the generic "Extension" (use sites include utils/wait_event.h). */
#if PG_VERSION_NUM >= 170000
#define gcpg_wait_event(name) WaitEventExtensionNew(name)
#else
#define gcpg_wait_event(name) PG_WAIT_EXTENSION
#endif
/* The inference worker's latch waits report the wait event class Extension. 17 moved
 * PG_WAIT_EXTENSION into utils/wait_classes.h, which utils/wait_event.h includes in 17+. */
#include "utils/wait_event.h"
#define GCPG_WAIT_EVENT PG_WAIT_EXTENSION

#endif
