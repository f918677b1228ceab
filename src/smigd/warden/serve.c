/*
 * serve.c - the warden's answer to each request of the worker (privmsg.h).
 *
 * The warden trusts nothing the worker says: every datagram is decoded
 * strictly, and every request is checked against what the warden holds
 * itself. A VM is always one the warden's own table has, in the state the
 * request needs (an incoming start only for a VM a migration brought in,
 * a discard only for one not committed yet); what QEMU is given always
 * comes from the spec the warden parsed and saved; a writable volume is
 * never given to a second VM. A request an honest worker cannot send (a
 * malformed datagram, a VM the warden does not know, a state the request
 * does not fit) is a security event: logged and audited as such, and a
 * malformed datagram also ends the worker, which the warden then starts
 * afresh.
 */
#include "warden/wd_int.h"
#include "audit.h"
#include "error.h"
#include "log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void wd_reply_status(struct warden *w, uint16_t type, uint32_t id, int status, const char *err)
{
	const char *fields;
	size_t nfds;
	unsigned code = (unsigned)(status < 0 ? -status : 0);
	int rc;

	if (smig_pm_schema((uint16_t)(type + 1), &fields, &nfds) < 0)
		return;
	if (strcmp(fields, "u") == 0)
		rc = smig_pm_build(&w->tx, (uint16_t)(type + 1), id, code);
	else if (strcmp(fields, "ut") == 0)
		rc = smig_pm_build(&w->tx, (uint16_t)(type + 1), id, code, err ? err : "");
	else
		return; /* replies with more fields are built where they are answered */
	if (rc == 0)
		wd_send(w, &w->tx, NULL, 0);
}

/* The VM a request names, or NULL (a violation) when the warden does not know it. */
static struct wvm *known_vm(struct warden *w, const struct smig_pm *m)
{
	struct wvm *v = wd_vm_find(w, smig_pm_str(m, 0));

	if (v == NULL)
		wd_violation(w, smig_pm_name(m->type), "names VM %s, which %s does not have",
			     smig_pm_str(m, 0), w->cfg.host);
	else if (v->retire)
		wd_violation(w, smig_pm_name(m->type), "names VM %s, which is leaving %s",
			     v->spec.name, w->cfg.host);
	return v && !v->retire ? v : NULL;
}

static void serve_define(struct warden *w, const struct smig_pm *m)
{
	char err[1024] = "", *pinned = NULL;
	int rc = wd_vm_define(w, smig_pm_str(m, 0), &pinned, err, sizeof(err));

	if (smig_pm_build(&w->tx, SMIG_PM_VM_DEFINE + 1, m->id, (unsigned)(rc < 0 ? -rc : 0), err,
			  pinned ? pinned : "") == 0)
		wd_send(w, &w->tx, NULL, 0);
	free(pinned);
}

static void serve_stage(struct warden *w, const struct smig_pm *m)
{
	char err[1024] = "";
	bool hostile = false;
	int rc = wd_vm_stage(w, m, &hostile, err, sizeof(err));

	if (rc == SMIG_EBUSY) { /* a writable volume of another VM of this host */
		hostile = true;
		wd_violation(w, "vm.stage", "%s", err);
	}
	if (smig_pm_build(&w->tx, SMIG_PM_VM_STAGE + 1, m->id, (unsigned)(rc < 0 ? -rc : 0), err,
			  hostile) == 0)
		wd_send(w, &w->tx, NULL, 0);
}

static void serve_start(struct warden *w, const struct smig_pm *m)
{
	struct wvm *v = known_vm(w, m);
	bool incoming = smig_pm_int(m, 1) != 0;

	if (v && (wd_vm_running(v) || v->start_id)) {
		if (smig_pm_build(&w->tx, SMIG_PM_VM_START + 1, m->id, (unsigned)-SMIG_EBUSY,
				  "it is already running here", 0u, 0u, 0) == 0)
			wd_send(w, &w->tx, NULL, 0);
		return;
	}
	if (v && incoming != v->staged) {
		wd_violation(w, "vm.start", "%s start of %s, which %s", incoming ? "an incoming" : "a",
			     v->spec.name,
			     v->staged ? "a migration brought in and did not commit"
				       : "no migration brings in");
		v = NULL;
	}
	if (v == NULL) {
		if (smig_pm_build(&w->tx, SMIG_PM_VM_START + 1, m->id, (unsigned)-SMIG_EPERM,
				  "refused by the warden", 0u, 0u, 0) == 0)
			wd_send(w, &w->tx, NULL, 0);
		return;
	}
	wd_vm_start(w, v, incoming, m->id);
}

static void serve_connect(struct warden *w, const struct smig_pm *m)
{
	struct wvm *v = known_vm(w, m);
	unsigned which = (unsigned)smig_pm_int(m, 1);
	int fd = -1;

	if (v && (which > SMIG_PM_SOCK_AGENT || (which == SMIG_PM_SOCK_AGENT && !v->spec.guest_agent)))
		wd_violation(w, "vm.connect", "socket %u of %s, which it does not have", which,
			     v->spec.name);
	else if (v)
		fd = wd_vm_connect(v, which);
	if (fd < 0) {
		wd_reply_status(w, SMIG_PM_VM_CONNECT, m->id, SMIG_ENOENT,
				v ? "its QEMU does not run" : "refused by the warden");
		return;
	}
	if (smig_pm_build(&w->tx, SMIG_PM_VM_CONNECT + 1, m->id, 0u, "") == 0)
		wd_send(w, &w->tx, &fd, 1);
	close(fd);
}

static void serve_tpm_key(struct warden *w, const struct smig_pm *m)
{
	static const uint8_t zero[32];
	struct wvm *v = known_vm(w, m);
	uint8_t key[32];
	int rc = v && v->spec.vtpm ? wd_tpm_key_get(w, v->spec.name, key, sizeof(key))
				   : SMIG_ENOENT;

	if (smig_pm_build(&w->tx, SMIG_PM_TPM_KEY + 1, m->id, (unsigned)(rc < 0 ? -rc : 0),
			  rc < 0 ? "no vTPM key" : "", rc < 0 ? zero : key) == 0)
		wd_send(w, &w->tx, NULL, 0);
	memset(key, 0, sizeof(key));
}

static void reply_build(struct warden *w, uint16_t type, uint32_t id, int rc, const char *err,
			const struct wd_fw_build *b)
{
	static const struct wd_fw_build none;

	if (rc < 0)
		b = &none;
	if (smig_pm_build(&w->tx, (uint16_t)(type + 1), id, (unsigned)(rc < 0 ? -rc : 0), err,
			  b->sha256, b->size) == 0)
		wd_send(w, &w->tx, NULL, 0);
}

static void serve_fw(struct warden *w, const struct smig_pm *m)
{
	struct wd_fw_build b;
	char err[512] = "";
	struct wvm *v;
	int rc;

	if (m->type == SMIG_PM_FW_HOST) {
		rc = wd_fw_host(w, smig_pm_str(m, 0), &b, err, sizeof(err));
	} else {
		v = known_vm(w, m);
		rc = v ? wd_fw_build_get(v, &b, err, sizeof(err)) : SMIG_ENOENT;
	}
	reply_build(w, m->type, m->id, rc, err, &b);
}

/*
 * The records only the warden writes: the chain's own (checkpoints, the
 * rotation that a verifier trusts to say where a set begins, damage and
 * repair found at start) and the daemon's life. A worker that asks for one
 * is not the worker smigd started.
 */
static bool warden_action(const char *action)
{
	static const char *const own[] = {
		SMIG_AUDIT_CHECKPOINT, SMIG_AUDIT_ROTATE, "audit.damage", "audit.repair",
		"smigd.start", "smigd.stop", "worker.restart", "privsep.violation",
	};

	for (size_t i = 0; i < ARRAY_LEN(own); i++)
		if (strcmp(action, own[i]) == 0)
			return true;
	return false;
}

static void serve_audit(struct warden *w, const struct smig_pm *m)
{
	char *line = NULL;
	bool ok;

	if (m->type == SMIG_PM_AUDIT_WRITABLE) {
		if (smig_pm_build(&w->tx, SMIG_PM_AUDIT_WRITABLE + 1, m->id, wd_audit_writable(w)) == 0)
			wd_send(w, &w->tx, NULL, 0);
		return;
	}
	if (warden_action(smig_pm_str(m, 1))) {
		wd_violation(w, "audit", "the worker asked for a %s record, which only the warden "
			     "writes", smig_pm_str(m, 1));
		if (smig_pm_build(&w->tx, SMIG_PM_AUDIT + 1, m->id, false, "") == 0)
			wd_send(w, &w->tx, NULL, 0);
		return;
	}
	ok = wd_audit_write(w, smig_pm_str(m, 0), smig_pm_str(m, 1), smig_pm_str(m, 2),
			    smig_pm_str(m, 3), smig_pm_str(m, 4), smig_pm_str(m, 5),
			    m->f[6].len ? smig_pm_str(m, 6) : NULL, &line);
	if (line)
		line[strcspn(line, "\n")] = '\0';
	if (smig_pm_build(&w->tx, SMIG_PM_AUDIT + 1, m->id, ok,
			  line && strlen(line) <= SMIG_PM_TEXT_MAX ? line : "") == 0)
		wd_send(w, &w->tx, NULL, 0);
	free(line);
}

static void evidence_done(struct warden *w, uint32_t id, int rc, const char *err,
			  const char *text, struct wd_logs *logs)
{
	char why[256] = "";

	if (rc == 0 && logs->fd < 0) /* no TPM logs: an empty file all the same */
		logs->fd = memfd_create("smig-attest-logs", MFD_CLOEXEC);
	if (rc == 0 && logs->fd < 0) {
		rc = SMIG_EIO;
		snprintf(why, sizeof(why), "memfd_create: %s", strerror(errno));
		err = why;
	}
	if (smig_pm_build(&w->tx, SMIG_PM_EVIDENCE + 1, id, (unsigned)(rc < 0 ? -rc : 0), err,
			  rc == 0 && text ? text : "", (uint64_t)logs->boot_len,
			  (uint64_t)logs->ima_len) == 0)
		wd_send(w, &w->tx, rc == 0 ? &logs->fd : NULL, rc == 0 ? 1 : 0);
}

static void serve_evidence(struct warden *w, const struct smig_pm *m)
{
	wd_evidence(w, m->id, smig_pm_key(m, 0), smig_pm_key(m, 1), smig_pm_int(m, 2),
		    smig_pm_key(m, 3), smig_pm_int(m, 4) != 0, evidence_done);
}

static void activate_done(struct warden *w, uint32_t id, int rc, const char *err,
			  const uint8_t *cred)
{
	static const uint8_t none[SMIG_CRED_LEN];

	if (smig_pm_build(&w->tx, SMIG_PM_TPM_ACTIVATE + 1, id, (unsigned)(rc < 0 ? -rc : 0),
			  err, rc == 0 && cred ? cred : none) == 0)
		wd_send(w, &w->tx, NULL, 0);
}

static void serve_activate(struct warden *w, const struct smig_pm *m)
{
	wd_tpm_activate(w, m->id, smig_pm_str(m, 0), smig_pm_str(m, 1), activate_done);
}

static void serve_list(struct warden *w, const struct smig_pm *m)
{
	char *text = wd_vm_list_json(w);

	if (smig_pm_build(&w->tx, SMIG_PM_VM_LIST + 1, m->id, text ? 0u : (unsigned)-SMIG_ENOMEM,
			  "", text ? text : "[]") == 0)
		wd_send(w, &w->tx, NULL, 0);
	free(text);
}

/* The requests about one VM the warden knows that answer with a status. */
static void serve_vm(struct warden *w, const struct smig_pm *m)
{
	struct wvm *v = known_vm(w, m);
	char err[512] = "";
	int rc = SMIG_EPERM;

	if (v == NULL) {
		wd_reply_status(w, m->type, m->id, SMIG_ENOENT, "refused by the warden");
		return;
	}
	switch (m->type) {
	case SMIG_PM_VM_UNDEFINE:
		if (v->staged)
			wd_violation(w, "vm.undefine", "%s is not committed: it is discarded, not undefined",
				     v->spec.name);
		else
			rc = wd_vm_undefine(w, v, err, sizeof(err));
		break;
	case SMIG_PM_VM_COMMIT:
		rc = wd_vm_commit(w, v, err, sizeof(err));
		break;
	case SMIG_PM_VM_DISCARD:
		if (!v->staged) {
			wd_violation(w, "vm.discard", "%s is committed here: it is undefined or retired",
				     v->spec.name);
			break;
		}
		wd_vm_discard(w, v);
		rc = 0;
		break;
	case SMIG_PM_VM_RETIRE:
		rc = wd_vm_retire(w, v);
		break;
	default: /* SMIG_PM_VM_KILL */
		wd_vm_kill(v, SIGKILL);
		rc = 0;
		break;
	}
	wd_reply_status(w, m->type, m->id, rc, rc == SMIG_EPERM ? "refused by the warden" : err);
}

static void serve_other(struct warden *w, const struct smig_pm *m)
{
	char err[512] = "";
	int rc;

	switch (m->type) {
	case SMIG_PM_BAN:
		rc = wd_ban(w, smig_pm_str(m, 0), (int64_t)smig_pm_int(m, 1));
		break;
	case SMIG_PM_UNBAN:
		rc = wd_unban(w, smig_pm_str(m, 0));
		break;
	default: /* SMIG_PM_IVT_WRITE */
		rc = wd_ivt_write(w, smig_pm_str(m, 0), err, sizeof(err));
		break;
	}
	wd_reply_status(w, m->type, m->id, rc, err);
}

void wd_serve(struct warden *w, const uint8_t *data, size_t len, const int *fds, size_t nfds)
{
	struct smig_pm m;
	int rc = smig_pm_parse(data, len, fds, nfds, &m);

	if (rc == 0 && (m.type >= SMIG_PM_EV_VM_EXIT || (m.type & 1) != 0))
		rc = SMIG_ETYPE; /* only requests come this way */
	if (rc < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		wd_violation(w, "datagram", "%zu bytes the protocol does not have (%s): the worker "
			     "is ended and started afresh", len, smig_strerror(rc));
		if (w->worker_pid > 0)
			kill(w->worker_pid, SIGKILL);
		return;
	}
	smig_debug("event=warden_request type=%s id=%u", smig_pm_name(m.type), m.id);
	switch (m.type) {
	case SMIG_PM_VM_LIST: serve_list(w, &m); break;
	case SMIG_PM_VM_DEFINE: serve_define(w, &m); break;
	case SMIG_PM_VM_STAGE: serve_stage(w, &m); break;
	case SMIG_PM_VM_START: serve_start(w, &m); break;
	case SMIG_PM_VM_CONNECT: serve_connect(w, &m); break;
	case SMIG_PM_TPM_KEY: serve_tpm_key(w, &m); break;
	case SMIG_PM_FW_BUILD:
	case SMIG_PM_FW_HOST: serve_fw(w, &m); break;
	case SMIG_PM_AUDIT:
	case SMIG_PM_AUDIT_WRITABLE: serve_audit(w, &m); break;
	case SMIG_PM_EVIDENCE: serve_evidence(w, &m); break;
	case SMIG_PM_TPM_ACTIVATE: serve_activate(w, &m); break;
	case SMIG_PM_READY:
		wd_notify(w, WD_READY);
		if (smig_pm_build(&w->tx, SMIG_PM_READY + 1, m.id, (uint64_t)0) == 0)
			wd_send(w, &w->tx, NULL, 0);
		break;
	case SMIG_PM_VM_UNDEFINE:
	case SMIG_PM_VM_COMMIT:
	case SMIG_PM_VM_DISCARD:
	case SMIG_PM_VM_RETIRE:
	case SMIG_PM_VM_KILL: serve_vm(w, &m); break;
	default: serve_other(w, &m); break;
	}
}
