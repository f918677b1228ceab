/*
 * control.h - the control part of the worker: the unix control socket
 * (control.c: clients, request lines, their credentials), the table of
 * commands and the policy action each needs (control_cmd.c), and the
 * commands of each family (cmd_vm.c, cmd_trust.c, cmd_audit.c,
 * cmd_ids.c; testhooks.c in test builds). It stands above every other
 * part of the worker and is the only one that reads a client's request.
 */
#ifndef SMIGD_CONTROL_H
#define SMIGD_CONTROL_H

#include "core/smigd.h"

int ctl_open(struct smigd *d);
/*
 * metrics.c: the Prometheus endpoint on metrics.listen (nothing without
 * it), bound before the sandbox and run on the loop; metrics_render makes
 * the page (malloc'd, *len bytes).
 */
int metrics_open(struct smigd *d);
void metrics_close(struct smigd *d);
char *metrics_render(struct smigd *d, size_t *len);
/*
 * A control client on fd (non-blocking) with the caller's credentials and
 * groups (ngroups -1: unknown, asked of NSS). The fd is the client's from
 * now on, on success.
 */
int ctl_client_add(struct smigd *d, int fd, const struct ucred *cred, const gid_t *groups,
		   int ngroups);
void ctl_close_all(struct smigd *d);
/* Requests read so far. */
uint64_t ctl_requests(const struct smigd *d);
/* Clients connected now. */
size_t ctl_clients(const struct smigd *d);

/* control_cmd.c */
struct smig_ctl_req;
/*
 * Runs req's command for ref's caller if the policy allows it (else the
 * refusal is the reply); false if there is no such command.
 */
bool ctl_dispatch(struct smigd *d, const struct smig_ctl_req *req, struct ctl_ref *ref);

/* the command families */
void cmd_vm(struct smigd *d, const char *sub, const json_t *args, struct ctl_ref *ref);
void cmd_ivt_enrol(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_ivt_show(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_evacuate(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_maintenance(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_audit_show(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_audit_verify(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_events(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_ids_status(struct smigd *d, const json_t *args, struct ctl_ref *ref);
void cmd_ids_unban(struct smigd *d, const json_t *args, struct ctl_ref *ref);

#endif
