/*
 * migrate.c - the migration engine (migrate.h): the migration record and
 * what both ends share, and the dispatch of frames, QEMU events and lost
 * connections to the source side (mig_src.c) or the destination side
 * (mig_dst.c).
 *
 *   source                                   destination
 *   CONNECTING  --TLS, HELLO-->
 *   PREPARING   --PREPARE(spec, key)-->      start QEMU -incoming defer
 *               <--PREPARED--                PREPARING
 *   STREAMING   --DATA...-->                 STREAMING: DATA -> QEMU
 *   (QEMU completed, source paused, EOF)
 *   COMMIT_WAIT --COMMIT_REQ(bytes)-->       all bytes in, QEMU completed
 *               <--READY--                   COMMIT_WAIT
 *   COMMITTING  --COMMIT-->                  cont
 *               <--COMMITTED--               DONE: the VM runs here
 *   DONE: quit QEMU, wipe vTPM state
 *
 * Which frame each state takes and which state follows which is
 * libsmig's migproto.c; every change goes through mig_set_state().
 */
#include "mig_int.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "qmpconn.h"
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */

/*
 * QMP replies may outlive a migration, so their callbacks carry the
 * migration's id, not a pointer, and look it up among the live ones. The
 * daemon is one per process: the engine remembers it here.
 */
static struct smigd *mig_daemon;

struct mig *mig_new(struct smigd *d, bool source)
{
	struct mig *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	mig_daemon = d;
	m->d = d;
	smig_migproto_init(&m->p, source, 0);
	m->fd = -1;
	m->trace_fd = -1;
	m->t_start = loop_now_ns();
	m->last_activity_ms = loop_now_ms();
	smig_buf_init(&m->pend, MIG_PEND_HIGH + SMIG_FRAME_MAX_PAYLOAD);
	m->next = d->migs;
	d->migs = m;
	return m;
}

#ifdef SMIG_STOP_POINTS
/*
 * Test builds: SMIG_TRACE_DIR=DIR writes each migration's frames and
 * steps to DIR/<src|dst>-<id>.trace in fuzz_migproto's input format, so
 * real sessions become its seed corpus (fuzz/seed-corpus.sh).
 */
void mig_trace(struct mig *m, uint8_t op, const void *rec, size_t len)
{
	const char *dir = getenv("SMIG_TRACE_DIR");
	uint8_t head[17];
	char path[512];

	if (dir == NULL || *dir == '\0')
		return;
	if (m->trace_fd < 0) {
		snprintf(path, sizeof(path), "%s/%s-%016llx.trace", dir, m->p.source ? "src" : "dst",
			 (unsigned long long)m->p.id);
		m->trace_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (m->trace_fd < 0)
			return;
		head[0] = m->p.source;
		for (int i = 0; i < 8; i++) {
			head[1 + i] = (uint8_t)(m->p.id >> (56 - 8 * i));
			head[9 + i] = (uint8_t)(m->p.budget >> (56 - 8 * i));
		}
		if (write(m->trace_fd, head, sizeof(head)) < 0)
			return;
	}
	if (write(m->trace_fd, &op, 1) < 0 || (len && write(m->trace_fd, rec, len) < 0))
		smig_debug("event=trace_write_failed vm=%s", m->vm_name);
}

static void mig_trace_frame(struct mig *m, const struct smig_frame *f)
{
	uint8_t hdr[SMIG_FRAME_HDR_LEN] = { SMIG_PROTO_VERSION, f->type, 0, 0,
					    (uint8_t)(f->len >> 24), (uint8_t)(f->len >> 16),
					    (uint8_t)(f->len >> 8), (uint8_t)f->len };
	bool data = f->type == SMIG_MSG_MIG_DATA;

	mig_trace(m, data ? 'D' : 'F', hdr, sizeof(hdr));
	if (!data && f->len && m->trace_fd >= 0 && write(m->trace_fd, f->payload, f->len) < 0)
		smig_debug("event=trace_write_failed vm=%s", m->vm_name);
}
#else
void mig_trace(struct mig *m, uint8_t op, const void *rec, size_t len)
{
	(void)m;
	(void)op;
	(void)rec;
	(void)len;
}

static void mig_trace_frame(struct mig *m, const struct smig_frame *f)
{
	(void)m;
	(void)f;
}
#endif

void mig_set_state(struct mig *m, enum smig_mst to)
{
	uint8_t rec = (uint8_t)to;
	enum smig_mst from = m->p.state;

	if (smig_migproto_to(&m->p, to) < 0) {
		smig_err("event=migration_state_illegal vm=%s %s=%s id=%016llx from=%s to=%s "
			 "action=abort",
			 m->vm_name, m->p.source ? "to" : "from", m->peer_host,
			 (unsigned long long)m->p.id, smig_mst_names[from], smig_mst_names[to]);
		abort();
	}
	smig_debug("event=migration_state vm=%s id=%016llx from=%s to=%s", m->vm_name,
		   (unsigned long long)m->p.id, smig_mst_names[from], smig_mst_names[to]);
	mig_trace(m, 'S', &rec, 1);
}

void mig_close_fd(struct mig *m)
{
	loop_watch_del(m->d->loop, m->w);
	m->w = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* Releases a record already taken off the daemon's list. */
static void mig_release(struct mig *m)
{
	mig_close_fd(m);
	loop_timer_cancel(m->d->loop, m->timer);
	agent_ping_cancel(m->agent_ping);
	if (m->vm && vm_mig(m->vm) == m)
		vm_set_mig(m->vm, NULL);
	if (m->peer)
		peer_release(m->peer);
	smig_buf_clear(&m->pend);
	json_decref(m->ref.id);
	if (m->trace_fd >= 0)
		close(m->trace_fd);
	free(m);
}

void mig_free(struct mig *m)
{
	for (struct mig **pp = &m->d->migs; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	mig_release(m);
}

void mig_free_all(struct smigd *d)
{
	while (d->migs) {
		struct mig *m = d->migs;
		d->migs = m->next;
		mig_release(m);
	}
}

int mig_count(const struct smigd *d)
{
	int n = 0;

	for (const struct mig *m = d->migs; m; m = m->next)
		n += m->p.state != SMIG_MST_DONE;
	return n;
}

json_t *mig_json(const struct mig *m)
{
	char id[24];

	snprintf(id, sizeof(id), "%016llx", (unsigned long long)m->p.id);
	return json_pack("{s:s,s:s,s:s,s:s}", m->p.source ? "to" : "from", m->peer_host, "id", id,
			 "state", smig_mst_names[m->p.state], "why", m->why);
}

void mig_abandon(struct mig *m)
{
	if (!mig_resolving(m))
		return; /* COMMIT still being answered: nothing to force (vm.c checks first) */
	smig_warn("event=migration_abandoned vm=%s peer=%s id=%016llx state=%s", m->vm_name,
		  m->peer_host, (unsigned long long)m->p.id, smig_mst_names[m->p.state]);
	if (m->vm)
		vm_set_mig(m->vm, NULL);
	m->vm = NULL;
	if (ctl_ref_waits(&m->ref))
		ctl_reply_err(m->d, &m->ref, "migration_failed",
			      "%s: the operator resumed the VM here over the unconfirmed commit",
			      m->vm_name);
	mig_set_state(m, SMIG_MST_DONE);
	mig_free(m);
}

bool mig_resolving(const struct mig *m)
{
	return m->p.state == SMIG_MST_RESOLVING;
}

const char *mig_target(const struct smigd *d, const char *vm)
{
	for (const struct mig *m = d->migs; m; m = m->next)
		if (m->p.source && strcmp(m->vm_name, vm) == 0)
			return m->peer_host;
	return NULL;
}

double mig_ms_between(uint64_t a_ns, uint64_t b_ns)
{
	return b_ns > a_ns ? (double)(b_ns - a_ns) / 1e6 : 0.0;
}

void mig_send_abort(struct mig *m, int code, const char *why)
{
	struct smig_mig_abort ab = { .id = m->p.id, .code = (uint16_t)-code };

	if (m->peer == NULL)
		return;
	snprintf(ab.reason, sizeof(ab.reason), "%s", why);
	(void)smig_msg_put_mig_abort(peer_tx(m->peer), &ab);
	peer_kick(m->peer);
}

/*
 * What this destination enforces for the incoming VM: what the VM manager
 * has in place, and whether this host's own last self-check meets the
 * VM's trust requirement.
 */
static uint32_t dst_protections(const struct mig *m)
{
	const struct smig_verdict *self = attest_self(m->d);
	uint32_t p;

	if (m->vm == NULL)
		return 0;
	p = vm_protections(m->vm);
	if (self && self->trust >= vm_spec(m->vm)->min_trust)
		p |= SMIG_PROT_MIN_TRUST;
	return p;
}

void mig_send_id(struct mig *m, uint8_t type)
{
	if (m->peer == NULL)
		return;
	if (type == SMIG_MSG_MIG_READY)
		(void)smig_msg_put_mig_ready(peer_tx(m->peer), m->p.id, dst_protections(m));
	else
		(void)smig_msg_put_mig_id(peer_tx(m->peer), type, m->p.id);
	peer_send_now(m->peer); /* PREPARED, READY, COMMIT, COMMITTED: each one waits on it */
}

static struct mig *mig_by_id(struct smigd *d, uint64_t id)
{
	for (struct mig *m = d ? d->migs : NULL; m; m = m->next)
		if (m->p.id == id)
			return m;
	return NULL;
}

void *mig_cb_new(struct mig *m)
{
	return (void *)(uintptr_t)m->p.id; // NOLINT(performance-no-int-to-ptr)
}

struct mig *mig_cb_take(void *arg)
{
	return mig_by_id(mig_daemon, (uint64_t)(uintptr_t)arg);
}

/* ---------------------------- shared ------------------------------ */

void mig_peer_frame(struct smigd *d, struct peer *p, struct mig *m, const struct smig_frame *f)
{
	if (m) {
		m->last_activity_ms = loop_now_ms();
		mig_trace_frame(m, f);
	}
	if (m == NULL) {
		if (f->type == SMIG_MSG_MIG_PREPARE) {
			mig_dst_prepare(d, p, f);
			return;
		}
		if (f->type == SMIG_MSG_MIG_QUERY) {
			mig_dst_query(d, p, f);
			return;
		}
		smig_warn("event=protocol_violation host=%s reason=\"%s outside a migration\"",
			  peer_name(p), smig_frame_type_name(f->type));
		peer_release(p);
		return;
	}
	if (m->p.source && m->p.state == SMIG_MST_RESOLVING)
		mig_resolve_frame(m, f);
	else if (m->p.source)
		mig_src_frame(m, f);
	else
		mig_dst_frame(m, f);
}

void mig_peer_lost(struct mig *m, const char *why)
{
	m->peer = NULL;
	if (m->p.state == SMIG_MST_RESOLVING) {
		snprintf(m->why, sizeof(m->why), "%s", why); /* asked again on the next tick */
		return;
	}
	if (m->p.state == SMIG_MST_SETTLING) {
		/* committed: the destination keeps watching; the source reports what it knows */
		if (m->p.source)
			mig_src_settle_lost(m, why);
		return;
	}
	if (m->p.source) {
		mig_src_fail(m, SMIG_ECLOSED, "lost the connection to %s: %s", m->peer_host, why);
		return;
	}
	if (m->p.state == SMIG_MST_COMMITTING)
		return; /* COMMIT arrived: the VM is being resumed here; finish that */
	mig_dst_abort(m, false, SMIG_ECLOSED, "lost the connection to %s: %s", m->peer_host, why);
}

void mig_vm_event(struct mig *m, const struct smig_qmp_msg *ev)
{
	const char *status = json_string_value(json_object_get(ev->data, "status"));

	if (!m->p.source && m->p.state == SMIG_MST_SETTLING && strcmp(ev->event, "GUEST_PANICKED") == 0) {
		mig_dst_guest_crashed(m, "the guest panicked %.1f s after resume (GUEST_PANICKED)",
				      mig_ms_between(m->t_resumed, loop_now_ns()) / 1000.0);
		return;
	}
	if (m->p.source && strcmp(ev->event, "STOP") == 0 && m->p.state == SMIG_MST_STREAMING) {
		m->t_stop = loop_now_ns();
		smig_debug("event=source_stopped vm=%s relayed=%llu queued=%zu", m->vm_name,
			   (unsigned long long)m->p.bytes, peer_tx_pending(m->peer));
		return;
	}
	if (strcmp(ev->event, "MIGRATION") != 0 || status == NULL)
		return;
	smig_debug("event=qemu_migration vm=%s status=%s", m->vm_name, status);
	if (strcmp(status, "completed") == 0) {
		m->qemu_done = true;
		if (m->p.source) {
			if (m->vm && vm_qmp(m->vm))
				(void)qmpconn_send(vm_qmp(m->vm), "query-migrate", NULL, -1,
						   mig_src_progress_reply, mig_cb_new(m));
			mig_src_commit_req(m);
		} else {
			mig_dst_maybe_ready(m);
		}
	} else if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
		if (m->p.source)
			mig_src_fail(m, SMIG_EIO, "QEMU reports the migration %s", status);
		else
			mig_dst_abort(m, true, SMIG_EIO, "the incoming QEMU reports the migration %s",
				  status);
	}
}

void mig_vm_exited(struct mig *m)
{
	if (m->p.source && m->qemu_done && m->p.state >= SMIG_MST_STREAMING && m->p.state <= SMIG_MST_COMMITTING) {
		/*
		 * QEMU finished its stream and then died: the destination holds (or
		 * is about to hold) the only whole copy. Hand the VM over to it
		 * rather than lose it; without that copy the VM is lost either way.
		 */
		m->src_gone = true;
		smig_err("event=source_qemu_died vm=%s to=%s state=%s action=hand_over_to_destination",
			 m->vm_name, m->peer_host, smig_mst_names[m->p.state]);
	} else if (m->p.source && m->p.state == SMIG_MST_RESOLVING) {
		/* the paused copy is gone: whatever the answer, only the destination's can run */
		m->src_gone = true;
		smig_err("event=source_qemu_died vm=%s to=%s state=resolving", m->vm_name,
			 m->peer_host);
	} else if (m->p.source) {
		m->src_gone = true;
		mig_src_fail(m, SMIG_EIO, "QEMU exited here during the migration");
	} else if (m->p.state == SMIG_MST_SETTLING) {
		mig_dst_guest_crashed(m, "QEMU exited %.1f s after resume",
				      mig_ms_between(m->t_resumed, loop_now_ns()) / 1000.0);
	} else {
		/* called by the VM manager: discard the VM on the next turn of the loop */
		snprintf(m->why, sizeof(m->why), "the incoming QEMU exited");
		loop_timer_cancel(m->d->loop, m->timer);
		(void)loop_timer_add(m->d->loop, 0, mig_dst_abort_later, m, &m->timer);
	}
}
