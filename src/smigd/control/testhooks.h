/*
 * testhooks.h - control commands of test builds only (testhooks.c).
 */
#ifndef SMIGD_TESTHOOKS_H
#define SMIGD_TESTHOOKS_H

#include "core/smigd.h"

#ifdef SMIG_TEST_HOOKS
void testhook_qmp(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void testhook_worker(struct smigd *d, const json_t *args, struct ctl_ref *ref);
#endif

#endif
