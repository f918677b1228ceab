/*
 * testhooks.c - control commands that exist only in test builds (meson
 * -Dtest_hooks=true, as make check's sanitizer build is): they let a test
 * act from inside a confined process to prove what it cannot do. Release
 * builds have none of them, and only root may call them.
 *
 * debug.qmp {vm, command, arguments}: one QMP command to the VM's QEMU, as
 * QEMU (its uid, its sandbox, its Landlock) runs it; the reply is QMP's.
 */
#include "smigd.h"
#include "qmpconn.h"
#include "testhooks.h"
#include "vm.h"

#include <stdlib.h>
#include <string.h>

struct hook_req {
	struct smigd *d;
	struct ctl_ref ref;
};

static void on_qmp(void *arg, const struct smig_qmp_msg *r)
{
	struct hook_req *h = arg;

	if (r == NULL)
		ctl_reply_err(h->d, &h->ref, "error", "QEMU gave no answer");
	else if (r->kind == SMIG_QMP_RETURN)
		ctl_reply_ok(h->d, &h->ref, json_pack("{s:O}", "return", r->ret));
	else
		ctl_reply_err(h->d, &h->ref, "qmp_error", "%s: %s",
			      r->error_class ? r->error_class : "error",
			      r->error_desc ? r->error_desc : "");
	free(h);
}

void testhook_qmp(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	const char *name = json_string_value(json_object_get(args, "vm"));
	const char *cmd = json_string_value(json_object_get(args, "command"));
	json_t *cargs = json_object_get(args, "arguments");
	struct vm *vm = name ? vm_find(d, name) : NULL;
	struct hook_req *h;

	if (!ref->has_cred || ref->cred.uid != 0) {
		ctl_reply_err(d, ref, "denied", "debug.qmp: root only");
		return;
	}
	if (vm == NULL || cmd == NULL || vm_qmp(vm) == NULL) {
		ctl_reply_err(d, ref, "bad_request", "debug.qmp needs vm (a running VM) and command");
		return;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	h->d = d;
	h->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	if (qmpconn_send(vm_qmp(vm), cmd, cargs ? json_incref(cargs) : NULL, -1, on_qmp, h) < 0) {
		ctl_reply_err(d, &h->ref, "error", "cannot send to QEMU");
		free(h);
	}
}
