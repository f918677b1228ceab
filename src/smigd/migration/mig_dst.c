/*
 * mig_dst.c - the destination side of a migration: check the peer's spec,
 * start the incoming QEMU (and swtpm with the key from PREPARE), feed it
 * the stream, answer COMMIT_REQ with READY once QEMU holds the whole state,
 * resume on COMMIT; any failure discards every trace of the incoming VM.
 * After COMMITTED the resumed guest is watched for limits.guest_watch_ms
 * (SETTLING): a panic or a dead QEMU in that window is reported to the
 * source as SETTLED(crashed), and the VM stays here, crashed, for the
 * operator: it has run here, so the source's copy is not current any more.
 * A guest agent that answered the source is pinged until it answers here;
 * silence through the window is SETTLED(unresponsive), the VM left running.
 */
#include "migration/mig_int.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"
#include "msg.h"
#include "vm/vm.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>


/* The outcome of an incoming migration the policy allowed. */
static void dst_audit(const struct mig *m, const char *outcome, const char *detail)
{
	char actor[SMIG_NAME_MAX + 8], target[2 * SMIG_NAME_MAX + 16];

	snprintf(actor, sizeof(actor), "peer:%s", m->peer_host);
	snprintf(target, sizeof(target), "vm:%s from:%s", m->vm_name, m->peer_host);
	audit_write(m->d, actor, "vm.migrate", target, "allow", m->rule, outcome, detail);
}

/*
 * STATE_DIR/incoming.log: one line per incoming migration that reached
 * COMMIT here, "ID SOURCE VM committed", and "ID SOURCE VM discarded" for
 * one whose resume failed or never happened (whether the guest has run
 * here is in the VM's own incoming.id). A source that lost the answer to its
 * COMMIT asks (MIG_QUERY), and this is what answers once the migration
 * record itself is gone. Written before the VM resumes, without fsync (a
 * host that loses power loses the resumed QEMU too); kept to the last
 * INCOMING_LOG_MAX bytes or so (one older file).
 */
#define INCOMING_LOG_MAX ((off_t)4 * 1024 * 1024)

static void incoming_log_path(const struct smigd *d, bool old, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/worker/incoming.log%s", d->cfg.state_dir, old ? ".1" : "");
}

static int dst_record(const struct mig *m, const char *what)
{
	char path[PATH_MAX], old[PATH_MAX], line[256];
	struct stat st;
	int fd, n;

	incoming_log_path(m->d, false, path, sizeof(path));
	if (stat(path, &st) == 0 && st.st_size > INCOMING_LOG_MAX) {
		incoming_log_path(m->d, true, old, sizeof(old));
		(void)rename(path, old);
	}
	n = snprintf(line, sizeof(line), "%s %s %s %s\n", m->ids, m->peer_host, m->vm_name,
		     what);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || smig_file_write_all(fd, line, (size_t)n) < 0 || close(fd) < 0) {
		smig_err("event=incoming_log_failed vm=%s id=%s reason=\"%s\"", m->vm_name,
			 m->ids, strerror(errno));
		return SMIG_EIO;
	}
	return 0;
}

/* What incoming.log's last word on migration id from host answers a query. */
static uint8_t dst_record_find(const struct smigd *d, const struct smig_mig_id *id,
			       const char *host)
{
	char path[PATH_MAX], line[256], h[SMIG_NAME_MAX + 1], what[16];
	char ids[SMIG_MIG_ID_STR_LEN];
	uint8_t found = SMIG_OUTCOME_NOT_HERE;
	struct smig_mig_id v;

	for (int old = 1; old >= 0; old--) {
		FILE *f;

		incoming_log_path(d, old == 1, path, sizeof(path));
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%32s %63s %*s %15s", ids, h, what) != 3 ||
			    smig_mig_id_parse(ids, &v) < 0 || !smig_mig_id_eq(&v, id) ||
			    strcmp(h, host) != 0)
				continue;
			found = strcmp(what, "discarded") == 0 ? SMIG_OUTCOME_DISCARDED
								: SMIG_OUTCOME_COMMITTED;
		}
		if (f)
			fclose(f);
	}
	return found;
}

/*
 * The VM that migration id brought here, if it is still here: by its
 * incoming.id, never by name (another VM may have that name by now).
 * Resumed here, or its QEMU alive (resumed, or about to be after a
 * restart): committed. QEMU gone before the guest ever ran here: the
 * source's paused copy is the latest; this stale one goes. *out is the
 * outcome; false when no VM here came with id.
 */
static bool dst_vm_outcome(struct smigd *d, const struct smig_mig_id *id, struct mig *probe,
			   uint8_t *out)
{
	char src[SMIG_NAME_MAX + 1], err[256];
	struct vm *vm;
	bool resumed = false;
	struct smig_mig_id v;

	for (vm = vm_first(d); vm; vm = vm_next(vm))
		if (vm_incoming_get(vm, &v, src, &resumed) == 0 && smig_mig_id_eq(&v, id) &&
		    strcmp(src, probe->peer_host) == 0)
			break;
	if (vm == NULL)
		return false;
	snprintf(probe->vm_name, sizeof(probe->vm_name), "%s", vm_spec(vm)->name);
	if (resumed || vm_qemu_alive(vm))
		*out = vm_state_known(vm) || resumed ? SMIG_OUTCOME_COMMITTED : SMIG_OUTCOME_PENDING;
	else if (vm_mig(vm) || vm_undefine(d, vm, err, sizeof(err)) < 0)
		*out = SMIG_OUTCOME_PENDING; /* cannot tell yet: let the source ask again */
	else {
		(void)dst_record(probe, "discarded");
		smig_warn("event=incoming_never_resumed vm=%s from=%s action=discarded",
			  probe->vm_name, probe->peer_host);
		*out = SMIG_OUTCOME_DISCARDED;
	}
	return true;
}

void mig_dst_query(struct smigd *d, struct peer *p, const struct smig_frame *f)
{
	uint8_t outcome = SMIG_OUTCOME_NOT_HERE;
	struct mig *m = NULL;
	struct smig_mig_id id;
	char ids[SMIG_MIG_ID_STR_LEN];

	if (smig_msg_get_mig_id(f, SMIG_MSG_MIG_QUERY, &id) < 0 || smig_mig_id_zero(&id)) {
		sec_event(d, SMIG_SEC_PROTOCOL_VIOLATION, "", peer_name(p), "malformed MIG_QUERY");
		peer_release(p);
		return;
	}
	for (m = d->migs->head; m; m = m->next)
		if (!m->p.source && smig_mig_id_eq(&m->p.id, &id))
			break;
	if (m && strcmp(m->peer_host, peer_name(p)) != 0) {
		/* only the source of a migration may ask about it */
		sec_event(d, SMIG_SEC_PROTOCOL_VIOLATION, "", peer_name(p),
			  "%s asked about the migration of %s from %s", peer_name(p), m->vm_name,
			  m->peer_host);
		peer_release(p);
		return;
	}
	if (m && m->p.state == SMIG_MST_COMMITTING) {
		outcome = SMIG_OUTCOME_PENDING;
	} else if (m && m->p.state >= SMIG_MST_SETTLING) {
		outcome = SMIG_OUTCOME_COMMITTED;
	} else if (m) {
		/* the source gave up that connection: it will never send COMMIT on it */
		mig_dst_abort(m, false, SMIG_ECLOSED,
			      "%s lost the connection and asked how the migration ended",
			      peer_name(p));
		outcome = SMIG_OUTCOME_DISCARDED;
	} else {
		struct mig probe = { .d = d };

		mig_id_set(&probe, &id);
		snprintf(probe.peer_host, sizeof(probe.peer_host), "%s", peer_name(p));
		/* a VM that left again, or was undefined, did run here: never say otherwise */
		if (!dst_vm_outcome(d, &id, &probe, &outcome))
			outcome = dst_record_find(d, &id, peer_name(p));
	}
	smig_mig_id_format(&id, ids);
	smig_info("event=migration_query from=%s id=%s outcome=%u", peer_name(p), ids, outcome);
	(void)smig_msg_put_mig_outcome(peer_tx(p), &id, outcome);
	/* one question per connection: a peer asks again on a new one (rate-limited) */
	(void)smig_msg_put_bye(peer_tx(p));
	peer_release(p);
}

/* Drops the incoming VM and the migration; tells the source when send is set. */
void mig_dst_abort(struct mig *m, bool send, int code, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (m->reason[0] == '\0' && m->p.state < SMIG_MST_SETTLING)
		snprintf(m->reason, sizeof(m->reason), "%s", why);
	if (m->p.state >= SMIG_MST_SETTLING) {
		/* committed: the VM runs here and is ours; nothing may discard it now */
		smig_warn("event=migration_settle_ended vm=%s from=%s reason=\"%s\"", m->vm_name,
			  m->peer_host, why);
		if (m->vm)
			vm_set_mig(m->vm, NULL);
		m->vm = NULL;
		if (m->p.state != SMIG_MST_DONE)
			mig_set_state(m, SMIG_MST_DONE);
		mig_free(m);
		return;
	}
	smig_warn("event=migration_aborted vm=%s from=%s state=%s reason=\"%s\" "
		  "action=discard_incoming",
		  m->vm_name, m->peer_host, smig_mst_names[m->p.state], why);
	if (m->p.state == SMIG_MST_COMMITTING)
		(void)dst_record(m, "discarded"); /* recorded as committed, never resumed */
	if (m->rule[0])
		dst_audit(m, "failed", why);
	mig_close_fd(m);
	if (m->vm) {
		vm_discard(m->vm); /* QEMU and swtpm killed, state removed, before ABORT */
		m->vm = NULL;
	}
	if (send)
		mig_send_abort(m, code, why);
	mig_set_state(m, SMIG_MST_DONE);
	mig_free(m);
}

void mig_dst_maybe_ready(struct mig *m)
{
	if (m->p.state != SMIG_MST_COMMIT_WAIT || m->p.ready_sent || !m->qemu_done ||
	    smig_buf_remaining(&m->pend) > 0)
		return;
	if (store_active(m->d)) {
		/* the source hands the VM's owner record here next: only under a sound lease */
		uint64_t left;
		int64_t lease;

		if (store_lease(m->d, &left, &lease) != STORE_LEASE_SOUND) {
			/* from a turn of the loop of its own: the callers go on with m */
			snprintf(m->why, sizeof(m->why),
				 "this host's lease in the fleet store is not sound (%llu ms left): "
				 "it may not take %s's owner record",
				 (unsigned long long)left, m->vm_name);
			loop_timer_cancel(m->d->loop, m->timer);
			m->timer = NULL;
			(void)loop_timer_add(m->d->loop, 0, mig_dst_abort_later, m, &m->timer);
			return;
		}
	}
	mig_close_fd(m);
	(void)smig_migproto_ready_sent(&m->p);
	mig_trace(m, 'R', NULL, 0);
	smig_info("event=migration_ready vm=%s from=%s bytes=%llu", m->vm_name, m->peer_host,
		  (unsigned long long)m->p.bytes);
	mig_send_id(m, SMIG_MSG_MIG_READY);
}

/* Writes pending stream bytes into QEMU. */
static void dst_flush(struct mig *m)
{
	while (smig_buf_remaining(&m->pend) > 0) {
		ssize_t w = send(m->fd, smig_buf_peek(&m->pend), smig_buf_remaining(&m->pend),
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			mig_dst_abort(m, true, SMIG_EIO, "QEMU stopped taking the stream: %s",
				  strerror(errno));
			return;
		}
		(void)smig_buf_consume(&m->pend, (size_t)w);
	}
	if (m->w)
		(void)loop_watch_mod(m->d->loop, m->w, smig_buf_remaining(&m->pend) ? EPOLLOUT : 0);
	if (m->peer && smig_buf_remaining(&m->pend) < MIG_PEND_LOW)
		peer_rx_pause(m->peer, false);
	mig_dst_maybe_ready(m);
}

static void dst_fd_io(void *arg, uint32_t events)
{
	struct mig *m = arg;

	if ((events & (EPOLLERR | EPOLLHUP)) && smig_buf_remaining(&m->pend) == 0) {
		/*
		 * QEMU closes its end once it has loaded the whole state; whether it
		 * succeeded is told by its MIGRATION event, which may come later.
		 */
		smig_debug("event=qemu_stream_closed vm=%s", m->vm_name);
		mig_close_fd(m);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		mig_dst_abort(m, true, SMIG_EIO, "QEMU closed the incoming stream with %zu bytes unread",
			  smig_buf_remaining(&m->pend));
		return;
	}
	dst_flush(m);
}

static void dst_data(struct mig *m, const struct smig_frame *f)
{
	size_t off = 0;

	if (m->fd < 0) {
		mig_dst_abort(m, true, SMIG_EPROTO, "stream data after QEMU finished loading");
		return;
	}
	if (smig_buf_remaining(&m->pend) == 0) {
		ssize_t w = send(m->fd, f->payload, f->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0)
			off = (size_t)w;
	}
	if (off < f->len && smig_buf_put_bytes(&m->pend, f->payload + off, f->len - off) < 0) {
		mig_dst_abort(m, true, SMIG_ENOMEM, "stream buffer exhausted");
		return;
	}
	if (smig_buf_remaining(&m->pend) > 0) {
		(void)loop_watch_mod(m->d->loop, m->w, EPOLLOUT);
		if (smig_buf_remaining(&m->pend) > MIG_PEND_HIGH)
			peer_rx_pause(m->peer, true);
	}
}

static void dst_qmp_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);

	if (m == NULL || (r && r->kind == SMIG_QMP_RETURN))
		return;
	mig_dst_abort(m, true, SMIG_EIO, "QEMU refused the incoming migration: %s",
		  r ? r->error_desc : "no answer");
}

static void dst_incoming_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);

	if (m == NULL)
		return;
	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		mig_dst_abort(m, true, SMIG_EIO, "migrate-incoming failed: %s",
			  r ? r->error_desc : "no answer");
		return;
	}
	if (m->chans) {
		/* QEMU listens: its main stream first, the channels as they come */
		m->fd = mig_chans_dst_main(m);
		if (m->fd < 0 || fcntl(m->fd, F_SETFL, O_NONBLOCK) < 0 ||
		    loop_watch_add(m->d->loop, m->fd, 0, dst_fd_io, m, &m->w) < 0) {
			mig_dst_abort(m, true, SMIG_EIO, "cannot reach the incoming QEMU: %s",
				      strerror(errno));
			return;
		}
	}
	mig_set_state(m, SMIG_MST_STREAMING);
	mig_send_id(m, SMIG_MSG_MIG_PREPARED);
}

/* Ends the watch: SETTLED to the source (if still connected), audit, done. */
static void dst_settle(struct mig *m, uint8_t fate, const char *detail)
{
	struct smig_mig_settled st = { .id = m->p.id, .fate = fate };

	snprintf(st.detail, sizeof(st.detail), "%s", detail);
	if (m->peer && smig_msg_put_mig_settled(peer_tx(m->peer), &st) == 0)
		peer_send_now(m->peer);
	if (fate == SMIG_GUEST_CRASHED) {
		smig_err("event=guest_crashed_after_switchover vm=%s from=%s detail=\"%s\" "
			 "action=kept_crashed_here",
			 m->vm_name, m->peer_host, detail);
		dst_audit(m, "guest_crashed", detail);
	} else if (fate == SMIG_GUEST_UNRESPONSIVE) {
		smig_err("event=guest_unresponsive_after_switchover vm=%s from=%s detail=\"%s\" "
			 "action=kept_running_here",
			 m->vm_name, m->peer_host, detail);
		dst_audit(m, "guest_unresponsive", detail);
		if (m->vm)
			vm_note_error(m->vm,
				      "its guest agent answered on %s before the migration and not "
				      "here after it: the guest may be hung. Read its console (smig "
				      "vm console %s), ping it (smig vm ping %s); if it stays silent, "
				      "stop and start it",
				      m->peer_host, m->vm_name, m->vm_name);
	} else {
		smig_info("event=migration_settled vm=%s from=%s guest=alive watch_ms=%d", m->vm_name,
			  m->peer_host, m->d->cfg.guest_watch_ms);
	}
	m->rule[0] = '\0';
	mig_set_state(m, SMIG_MST_DONE);
	if (m->vm)
		vm_set_mig(m->vm, NULL);
	m->vm = NULL;
	mig_free(m);
}

void mig_dst_guest_crashed(struct mig *m, const char *fmt, ...)
{
	char detail[SMIG_REASON_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	dst_settle(m, SMIG_GUEST_CRASHED, detail);
}

static void dst_agent_word(void *arg, bool answered, const char *why);

/* One more ping of a guest agent that answered on the source; the next one is due later. */
static void dst_agent_ping(struct mig *m)
{
	m->agent_next_ms = loop_now_ms() + AGENT_RETRY_MS;
	m->agent_ping = vm_agent_ping(m->vm, dst_agent_word, m);
}

static void dst_agent_word(void *arg, bool answered, const char *why)
{
	struct mig *m = arg;

	m->agent_ping = NULL;
	if (!answered) {
		snprintf(m->agent_why, sizeof(m->agent_why), "%s", why);
		return; /* dst_tick pings again, or ends the watch */
	}
	m->agent = MA_ANSWERED;
	m->agent_ms = mig_ms_between(m->t_resumed, loop_now_ns());
	smig_info("event=guest_agent_answered vm=%s after_resume_ms=%.0f", m->vm_name,
		  m->agent_ms);
}

/* The watch is over (and no agent ping is in flight): how did the guest fare? */
static void dst_watch_end(struct mig *m)
{
	char detail[SMIG_REASON_MAX + 1];

	if (m->agent == MA_EXPECTED) {
		snprintf(detail, sizeof(detail),
			 "its guest agent answered on %s before the switch-over, and not here in "
			 "the %d ms after resume (%s)",
			 m->peer_host, m->d->cfg.guest_watch_ms, m->agent_why);
		dst_settle(m, SMIG_GUEST_UNRESPONSIVE, detail);
		return;
	}
	if (m->agent == MA_ANSWERED)
		snprintf(detail, sizeof(detail),
			 "no panic and QEMU alive through the watch; the guest agent answered "
			 "%.1f s after resume",
			 m->agent_ms / 1000.0);
	else
		snprintf(detail, sizeof(detail), "no panic and QEMU alive through the watch");
	dst_settle(m, SMIG_GUEST_ALIVE, detail);
}

static void dst_tick(void *arg)
{
	struct mig *m = arg;

	m->timer = NULL;
	if (m->chans && mig_chans_moved(m) && m->p.state < SMIG_MST_COMMITTING &&
	    m->p.bytes + m->chan_bytes > m->p.budget) {
		/* the channels carry the memory: they count against the same budget */
		sec_event(m->d, SMIG_SEC_STREAM_ANOMALY, "", m->peer_host,
			  "migration of %s sent %llu bytes, more than %llu that %u MiB of memory "
			  "allows in %d passes", m->vm_name,
			  (unsigned long long)mig_bytes(m),
			  (unsigned long long)m->p.budget, m->mem_mib, m->d->cfg.stream_passes);
		mig_dst_abort(m, true, SMIG_EPROTO, "the stream is longer than the VM's memory "
			      "allows");
		return;
	}
	if (m->p.state == SMIG_MST_SETTLING) {
		uint64_t now = loop_now_ms();

		if (m->agent == MA_EXPECTED && m->agent_ping == NULL && now >= m->agent_next_ms &&
		    now < m->settle_by_ms)
			dst_agent_ping(m);
		/* a ping in flight at the end of the watch still gets its answer */
		if (now >= m->settle_by_ms && m->agent_ping == NULL) {
			dst_watch_end(m);
			return;
		}
	} else if (m->p.state != SMIG_MST_COMMITTING &&
	    loop_now_ms() - m->last_activity_ms > (uint64_t)m->d->cfg.stall_timeout_ms) {
		sec_event(m->d, SMIG_SEC_STREAM_ANOMALY, "", m->peer_host,
			  "migration of %s stalled: nothing for %d ms while %s", m->vm_name,
			  m->d->cfg.stall_timeout_ms, smig_mst_names[m->p.state]);
		mig_dst_abort(m, true, SMIG_ETIMEDOUT, "nothing arrived for %d ms while %s",
			  m->d->cfg.stall_timeout_ms, smig_mst_names[m->p.state]);
		return;
	}
	(void)loop_timer_add(m->d->loop, MIG_PROGRESS_MS, dst_tick, m, &m->timer);
}

void mig_dst_abort_later(void *arg)
{
	struct mig *m = arg;

	m->timer = NULL;
	mig_dst_abort(m, true, SMIG_EIO, "%s", m->why);
}

/*
 * A channel failed. Once QEMU has loaded the whole stream a channel that
 * ends badly lost nothing (QEMU may have closed its end first).
 */
static void dst_chan_failed(struct mig *m, const char *why, bool attacked)
{
	if (m->qemu_done || m->p.state >= SMIG_MST_COMMITTING) {
		smig_debug("event=channel_after_load vm=%s why=\"%s\"", m->vm_name, why);
		return;
	}
	if (attacked)
		sec_event(m->d, SMIG_SEC_RECORD_AUTH_FAILURE, "", m->peer_host, "%s", why);
	mig_dst_abort(m, true, attacked ? SMIG_ETLS : SMIG_EIO, "%s", why);
}

static const struct mig_chan_ops dst_chan_ops = { .failed = dst_chan_failed };

void mig_dst_channel(struct smigd *d, struct peer *p, const struct smig_frame *f)
{
	struct smig_mig_channel ch;
	char why[256];
	struct mig *m = NULL;
	int rc = smig_msg_get_mig_channel(f, SMIG_MSG_MIG_CHANNEL, &ch);

	if (rc < 0) {
		peer_abort(p, rc, "bad CHANNEL: %s", smig_strerror(rc));
		return;
	}
	for (m = d->migs->head; m; m = m->next)
		if (!m->p.source && smig_mig_id_eq(&m->p.id, &ch.id))
			break;
	if (m == NULL || strcmp(m->peer_host, peer_name(p)) != 0 ||
	    m->p.state != SMIG_MST_STREAMING) {
		/*
		 * most often a channel of a migration that ended a moment ago (or
		 * held back on the path until it did): no fault of the host's
		 */
		peer_decline(p, SMIG_ENOENT, "CHANNEL %u for no migration from %s that streams here",
			     ch.index, peer_name(p));
		return;
	}
	rc = mig_chans_dst_take(m, p, &ch, why, sizeof(why));
	if (rc < 0) {
		/* a MAC that does not match, or an index taken twice, is the peer's doing */
		if (rc == SMIG_EAUTH || rc == SMIG_EPROTO)
			peer_abort(p, rc, "%s", why);
		else
			peer_decline(p, rc, "%s", why);
		mig_dst_abort(m, true, rc, "%s", why);
		return;
	}
	smig_info("event=channel_in vm=%s from=%s channel=%u", m->vm_name, m->peer_host, ch.index);
}

/* The incoming QEMU is up: give it the stream socket and wait for DATA. */
static void dst_started(void *arg, bool ok, const char *why)
{
	struct mig *m = arg;
	struct qmpconn *q;
	char fdname[40], err[256];
	char uri[48];
	int sv[2], qfd;
	int rc;

	if (!ok) {
		/* inside the VM manager's own callback: discard the VM on the next turn */
		snprintf(m->why, sizeof(m->why), "cannot start the VM here: %s", why);
		loop_timer_cancel(m->d->loop, m->timer);
		(void)loop_timer_add(m->d->loop, 0, mig_dst_abort_later, m, &m->timer);
		return;
	}
	q = vm_qmp(m->vm);
	snprintf(fdname, sizeof(fdname), "smig-%llu", (unsigned long long)m->serial);
	if (m->nchan) {
		/* multifd: QEMU listens on a socket of ours, "tcp:fd:" (see mig_chan.c) */
		if (mig_chans_dst(m, m->nchan, &dst_chan_ops, &qfd, err, sizeof(err)) < 0) {
			mig_dst_abort(m, true, SMIG_EIO, "%s", err);
			return;
		}
		snprintf(uri, sizeof(uri), "tcp:fd:%s", fdname);
	} else {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			mig_dst_abort(m, true, SMIG_EIO, "cannot create the stream socket");
			return;
		}
		m->fd = sv[0];
		qfd = sv[1];
		snprintf(uri, sizeof(uri), "fd:%s", fdname);
	}
	rc = m->fd >= 0 ? loop_watch_add(m->d->loop, m->fd, 0, dst_fd_io, m, &m->w) : 0;
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-set-capabilities",
				  json_pack("{s:[{s:s,s:b},{s:s,s:b}]}", "capabilities",
					    "capability", "events", "state", 1, "capability",
					    "multifd", "state", m->nchan > 0),
				  -1, dst_qmp_reply, mig_cb_new(m));
	if (rc == 0 && m->nchan)
		rc = qmpconn_send(q, "migrate-set-parameters",
				  json_pack("{s:I}", "multifd-channels", (json_int_t)m->nchan), -1,
				  dst_qmp_reply, mig_cb_new(m));
	if (rc == 0)
		rc = qmpconn_send(q, "getfd", json_pack("{s:s}", "fdname", fdname), qfd,
				  dst_qmp_reply, mig_cb_new(m));
	if (m->nchan == 0)
		close(qfd); /* a channel's listener stays ours too, until every channel is in */
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-incoming", json_pack("{s:s}", "uri", uri), -1,
				  dst_incoming_reply, mig_cb_new(m));
	if (rc < 0)
		mig_dst_abort(m, true, SMIG_EIO, "cannot talk to the incoming QEMU");
}

/*
 * The destination's half of mutual attestation: the source must have
 * proved, in this session, that it is who it says. A source that fails
 * its golden values may push only an evacuation (a tampered host must be
 * able to get its VMs out; the policy still decides whether they may come
 * here); the verdict is audited with the outcome.
 */
static bool source_attested(struct mig *m, struct peer *p, bool evacuation)
{
	const struct smig_verdict *v = peer_verdict(p);
	char actor[SMIG_NAME_MAX + 8], target[2 * SMIG_NAME_MAX + 16];

	snprintf(actor, sizeof(actor), "peer:%s", m->peer_host);
	snprintf(target, sizeof(target), "vm:%s from:%s", m->vm_name, m->peer_host);
	if (v && v->authentic && v->kind == SMIG_VERDICT_UNTRUSTED && !evacuation) {
		audit_write(m->d, actor, "vm.migrate", target, "deny", "attestation", "refused",
			    v->reason);
		mig_dst_abort(m, true, SMIG_EAUTH, "%s is untrusted (%s): only its evacuation is "
			      "taken", m->peer_host, v->reason);
		return false;
	}
	if (v && v->authentic) {
		if (v->kind == SMIG_VERDICT_UNTRUSTED)
			smig_warn("event=incoming_from_untrusted vm=%s from=%s evacuation=yes "
				  "reason=\"%s\"", m->vm_name, m->peer_host, v->reason);
		return true;
	}
	audit_write(m->d, actor, "vm.migrate", target, "deny", "attestation", "refused",
		    v ? v->reason : "PREPARE before the source's evidence");
	mig_dst_abort(m, true, SMIG_EAUTH, "%s is not attested: %s", m->peer_host,
		      v ? v->reason : "PREPARE before its evidence");
	return false;
}

/*
 * The destination decides from its own catalogue: the VM must fit in what
 * is free here, and then the warden stages it, which holds it against its
 * catalogue (every name one of its pools, networks and firmware, its QEMU
 * provides the machine type and CPU model, every volume opens beneath its
 * pool, no writable volume is another VM's, a UEFI VM's firmware build
 * (fw) is this host's or one it accepts) and keeps its vTPM key. A
 * refusal names what is missing; a name that looked like an escape, or a
 * volume of another VM, is a security event.
 */
static struct vm *dst_stage(struct mig *m, const struct smig_vmspec *spec,
			    const struct smig_mig_prepare *mp, const struct vm_fw_build *fw)
{
	char err[1024];
	bool hostile = false;
	struct vm *vm = NULL;
	int code = SMIG_ECAPACITY;

	/* what the source held ahead (an evacuation's plan) is this VM's now */
	if (vm_res_release(m->d, m->peer_host, spec->name))
		smig_info("event=capacity_hold_taken from=%s vm=%s", m->peer_host, spec->name);
	if (vm_res_admit(m->d, spec, err, sizeof(err)) == 0) {
		code = SMIG_ENOENT;
		if (spec->firmware.kind == SMIG_FW_UEFI && fw == NULL)
			snprintf(err, sizeof(err), "the source did not say which firmware build %s "
				 "runs", spec->name);
		else
			vm = vm_new_incoming(m->d, spec, m->peer_host, spec->vtpm ? mp->key : NULL, fw,
					     &hostile, &code, err, sizeof(err));
	}
	if (vm)
		return vm;
	if (code == SMIG_EEXIST) { /* a name taken here: not a matter of resources */
		mig_dst_abort(m, true, code, "%s", err);
		return NULL;
	}
	if (hostile)
		sec_event(m->d, SMIG_SEC_HOSTILE_SPEC, "", m->peer_host, "PREPARE of %s refused: %s",
			  m->vm_name, err);
	dst_audit(m, "refused", err);
	m->rule[0] = '\0'; /* audited once, as refused */
	if (code == SMIG_ECAPACITY)
		mig_dst_abort(m, true, code, "%s", err);
	else
		mig_dst_abort(m, true, SMIG_ENOENT, "%s cannot host %s: %s", m->d->cfg.host,
			      m->vm_name, err);
	return NULL;
}

/* Incoming migrations under way here, past their PREPARE, m not counted. */
static size_t dst_incoming(const struct mig *m)
{
	size_t n = 0;

	for (const struct mig *o = m->d->migs->head; o; o = o->next)
		n += o != m && !o->p.source && o->vm != NULL && o->p.state < SMIG_MST_SETTLING;
	return n;
}

/* The channels a source may open besides its session: each is a session of this host's peers. */
static size_t dst_max_channels(const struct smigd *d)
{
	size_t n = d->cfg.peers_per_host > 1 ? (size_t)d->cfg.peers_per_host - 1 : 0;

	return n < SMIG_CHAN_MAX ? n : SMIG_CHAN_MAX;
}

void mig_dst_prepare(struct smigd *d, struct peer *p, const struct smig_frame *f)
{
	struct smig_policy_decision dec;
	struct smig_mig_prepare mp;
	struct smig_mig_id id;
	struct smig_vmspec spec;
	struct vm_fw_build fwb;
	char name[SMIG_NAME_MAX + 16];
	char err[512];
	struct mig *m;
	struct vm *vm;

	m = mig_new(d, false);
	if (m == NULL)
		return;
	m->peer = p;
	snprintf(m->peer_host, sizeof(m->peer_host), "%s", peer_name(p));
	peer_attach_mig(p, m);
	/* the id is ours, at random: a source cannot name another migration */
	if (smig_mig_id_new(&id) < 0) {
		mig_dst_abort(m, true, SMIG_EIO, "no random migration id on %s", d->cfg.host);
		return;
	}
	mig_id_set(m, &id);
	if (smig_msg_get_mig_prepare(f, &mp) < 0) {
		mig_dst_abort(m, true, SMIG_EPROTO, "malformed PREPARE");
		return;
	}
	snprintf(name, sizeof(name), "spec from %s", m->peer_host);
	if (smig_vmspec_parse(name, mp.spec, mp.spec_len, &spec, err, sizeof(err)) < 0) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		/* an authenticated peer that sends what no smig writes is probing */
		sec_event(d, SMIG_SEC_HOSTILE_SPEC, "", m->peer_host, "PREPARE refused: %s", err);
		mig_dst_abort(m, true, SMIG_ECONFIG, "%s", err);
		return;
	}
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", spec.name);
	if (!source_attested(m, p, mp.evacuation)) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		return;
	}
	if (attest_maintenance(d)->on) {
		/* a planned change is under way here: no VM arrives until it is done */
		char actor[SMIG_NAME_MAX + 8], target[2 * SMIG_NAME_MAX + 16];

		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		snprintf(actor, sizeof(actor), "peer:%s", m->peer_host);
		snprintf(target, sizeof(target), "vm:%s from:%s", m->vm_name, m->peer_host);
		audit_write(d, actor, "vm.migrate", target, "deny", "maintenance", "refused",
			    attest_maintenance(d)->reason);
		mig_dst_abort(m, true, SMIG_EBUSY, "%s is in maintenance: it takes no VMs",
			      d->cfg.host);
		return;
	}
	if (!authz_peer_migrate(d, m->peer_host, &spec, &dec)) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		mig_dst_abort(m, true, SMIG_EDENIED, "%s (rule %s on %s)", dec.reason, dec.rule,
			      d->cfg.host);
		return;
	}
	/* an evacuation's target held room for it in its plan: it is never told to wait */
	if (d->cfg.parallel_inbound && !mp.evacuation &&
	    dst_incoming(m) >= (size_t)d->cfg.parallel_inbound) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		m->no_record = true; /* the source asks again: one record when it goes through */
		smig_info("event=migration_inbound_full vm=%s from=%s parallel_inbound=%d",
			  m->vm_name, m->peer_host, d->cfg.parallel_inbound);
		mig_dst_abort(m, true, SMIG_EFULL,
			      "%s takes %d incoming migrations at once (migration.parallel_inbound), "
			      "and has as many under way",
			      d->cfg.host, d->cfg.parallel_inbound);
		return;
	}
	snprintf(m->rule, sizeof(m->rule), "%s", dec.rule);
	if (mp.channels > dst_max_channels(d)) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		mig_dst_abort(m, true, SMIG_ECAPACITY, "%u parallel channels asked, %s takes at "
			      "most %zu (its limits.peers_per_host less one)", mp.channels,
			      d->cfg.host, dst_max_channels(d));
		return;
	}
	m->nchan = mp.channels;
	/* every pass sends at most all the memory, plus device state */
	m->mem_mib = spec.memory_mib;
	m->p.budget = ((uint64_t)spec.memory_mib << 20) * (uint64_t)d->cfg.stream_passes +
		    MIG_STATE_SLACK;
	if (spec.vtpm != (mp.has_key == 1)) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		mig_dst_abort(m, true, SMIG_EPROTO, "vTPM key %s", spec.vtpm ? "missing" : "unexpected");
		return;
	}
	memcpy(fwb.sha256, mp.fw_sha256, sizeof(fwb.sha256));
	fwb.size = mp.fw_size;
	/* from here the incoming VM holds its memory and vCPUs until commit or abort */
	vm = dst_stage(m, &spec, &mp, mp.has_fw ? &fwb : NULL);
	OPENSSL_cleanse(mp.key, sizeof(mp.key));
	if (vm == NULL)
		return; /* m is gone with its abort */
	m->vm = vm;
	/* the guest's agent answered on the source: after resume it must answer here too */
	if (mp.agent_answered && spec.guest_agent)
		m->agent = MA_EXPECTED;
	vm_set_mig(m->vm, m);
	mig_set_state(m, SMIG_MST_PREPARING);
	smig_info("event=migration_incoming vm=%s from=%s id=%s", m->vm_name, m->peer_host,
		  m->ids);
	(void)loop_timer_add(d->loop, MIG_PROGRESS_MS, dst_tick, m, &m->timer);
	vm_start_incoming(m->vm, dst_started, m);
}

/*
 * The fleet store's answer to the claim of a VM that arrived: its lease
 * noted; a third host's record pauses it (vm_fence.c), no answer has it
 * claimed again (paused meanwhile once its migration is over).
 */
static void dst_claimed(struct smigd *d, const char *name, const struct store_owner *r)
{
	struct vm *vm = vm_find(d, name);

	if (r->ok)
		smig_info("event=vm_claimed vm=%s from_migration=yes", name);
	else if (!r->answered)
		smig_warn("event=vm_claim_refused vm=%s owner=unknown reason=\"%s\"", name, r->error);
	if (vm)
		vm_claim_set(vm, r);
}

static void dst_resumed(void *arg, bool ok, const char *why)
{
	struct mig *m = arg;

	if (!ok) {
		snprintf(m->why, sizeof(m->why), "cannot resume the VM here: %s", why);
		loop_timer_cancel(m->d->loop, m->timer);
		(void)loop_timer_add(m->d->loop, 0, mig_dst_abort_later, m, &m->timer);
		return;
	}
	(void)vm_incoming_mark(m->vm, &m->p.id, m->peer_host, true);
	m->outcome = STATS_COMPLETED;
	/* the source waits with the VM paused there: answer before the audit's fsyncs */
	mig_send_id(m, SMIG_MSG_MIG_COMMITTED);
	smig_info("event=migration_committed vm=%s from=%s bytes=%llu", m->vm_name, m->peer_host,
		  (unsigned long long)m->p.bytes);
	dst_audit(m, "committed", NULL);
	/*
	 * The fleet store's owner record: the source handed it here, under
	 * this host's lease, before it sent COMMIT; claimed now as this
	 * host's own (the lease may have been renewed, or lost, since). From
	 * the source too: one of an older smig commits without a handover.
	 */
	if (store_active(m->d)) {
		vm_claim_arrived(m->vm);
		(void)store_claim(m->d, m->vm_name, m->peer_host, NULL, dst_claimed);
	}
	/* the VM's events still come here: watch the resumed guest for a while */
	mig_set_state(m, SMIG_MST_SETTLING);
	m->t_resumed = loop_now_ns();
	m->settle_by_ms = loop_now_ms() + (uint64_t)m->d->cfg.guest_watch_ms;
	if (m->d->cfg.guest_watch_ms == 0) {
		dst_settle(m, SMIG_GUEST_ALIVE, "not watched (limits.guest_watch_ms 0)");
		return;
	}
	if (m->agent == MA_EXPECTED) {
		snprintf(m->agent_why, sizeof(m->agent_why), "no ping ended yet");
		dst_agent_ping(m);
	}
}

/* COMMIT: record it, then the guest runs here. */
static void dst_commit(struct mig *m)
{
	m->t_commit = loop_now_ns();
	mig_set_state(m, SMIG_MST_COMMITTING);
	/*
	 * Before the guest runs here: the records a query is answered from,
	 * and the VM's own spec. Without them no resume: a source that lost
	 * our answer would find nothing and run its copy too.
	 */
	if (dst_record(m, "committed") < 0 ||
	    vm_incoming_mark(m->vm, &m->p.id, m->peer_host, false) < 0) {
		mig_dst_abort(m, true, SMIG_EIO,
			      "cannot record the commit on %s (is its state directory full?)",
			      m->d->cfg.host);
		return;
	}
	vm_adopt_incoming(m->vm);
	smig_debug("event=migration_commit_recorded vm=%s from=%s", m->vm_name, m->peer_host);
	vm_resume(m->vm, dst_resumed, m);
}

void mig_dst_frame(struct mig *m, const struct smig_frame *f)
{
	struct smig_mig_in_msg in;
	const struct smig_host *h;

	switch (smig_migproto_rx(&m->p, f, &in)) {
	case SMIG_IN_DATA:
		dst_data(m, f);
		return;
	case SMIG_IN_COMMIT_REQ:
		mig_set_state(m, SMIG_MST_COMMIT_WAIT);
		smig_debug("event=commit_request vm=%s pending=%zu", m->vm_name,
			   smig_buf_remaining(&m->pend));
		mig_dst_maybe_ready(m);
		return;
	case SMIG_IN_COMMIT:
		dst_commit(m);
		return;
	case SMIG_IN_ABORT:
		m->ended_by_peer = true;
		mig_dst_abort(m, false, SMIG_EPROTO, "the source aborted: %s", in.text);
		return;
	case SMIG_IN_OVER_BUDGET:
		sec_event(m->d, SMIG_SEC_STREAM_ANOMALY, "", m->peer_host,
			  "migration of %s sent %llu bytes, more than %llu that %u MiB of memory "
			  "allows in %d passes", m->vm_name, (unsigned long long)m->p.bytes,
			  (unsigned long long)m->p.budget, m->mem_mib, m->d->cfg.stream_passes);
		mig_dst_abort(m, true, SMIG_EPROTO, "%s", in.text);
		return;
	case SMIG_IN_BAD:
	case SMIG_IN_WRONG_LENGTH:
		mig_dst_abort(m, true, SMIG_EPROTO, "%s", in.text);
		return;
	case SMIG_IN_WRONG_ID:
		/* the id is ours and this session's: no honest source names another */
		h = smig_hosts_by_name(smigd_hosts(m->d), m->peer_host);
		sec_event(m->d, SMIG_SEC_PROTOCOL_VIOLATION, h ? h->addr : "", m->peer_host,
			  "%s sent %s during the migration of %s (id %s)", m->peer_host, in.text,
			  m->vm_name, m->ids);
		mig_dst_abort(m, true, SMIG_EPROTO, "%s", in.text);
		return;
	default: /* a violation; the source's own messages are violations here too */
		h = smig_hosts_by_name(smigd_hosts(m->d), m->peer_host);
		sec_event(m->d, SMIG_SEC_PROTOCOL_VIOLATION, h ? h->addr : "", m->peer_host,
			  "%s sent %s while the migration of %s was %s", m->peer_host,
			  smig_frame_type_name(f->type), m->vm_name, smig_mst_names[m->p.state]);
		mig_dst_abort(m, true, SMIG_EPROTO, "%s", in.text);
		return;
	}
}

