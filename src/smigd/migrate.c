/*
 * migrate.c - the migration engine (migrate.h): both ends of a live
 * migration, the relay between QEMU's stream and the peer channel, and the
 * two-phase switch-over.
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
 */
#include "migrate.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "qmpconn.h"
#include "vm.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MIG_CHUNK ((size_t)256 * 1024)
#define MIG_TX_HIGH ((size_t)4 * 1024 * 1024) /* stop reading QEMU above this */
#define MIG_PEND_HIGH ((size_t)8 * 1024 * 1024)
#define MIG_PEND_LOW ((size_t)1024 * 1024)
#define MIG_PROGRESS_MS 250

enum mig_state {
	MS_CONNECTING,
	MS_PREPARING,
	MS_STREAMING,
	MS_COMMIT_WAIT,
	MS_COMMITTING,
	MS_DONE,
};

static const char *const state_names[] = { "connecting", "preparing", "streaming",
					   "commit-wait", "committing", "done" };

struct mig {
	struct mig *next;
	struct smigd *d;
	bool source;
	uint64_t id;
	enum mig_state state;
	char vm_name[SMIG_NAME_MAX + 1];
	char peer_host[SMIG_NAME_MAX + 1];
	struct vm *vm;
	struct peer *peer;
	int fd; /* our end of the socketpair with QEMU */
	struct loop_watch *w;
	bool reading_paused;
	struct smig_buf pend; /* destination: stream bytes QEMU has not taken yet */
	uint64_t bytes;
	uint64_t expect;
	bool qemu_done;
	bool eof;
	bool ready_sent;
	struct mig_opts opts;
	struct ctl_ref ref;
	struct loop_timer *timer;
	uint64_t t_start, t_prepared, t_stop, t_commit, t_end;
	uint64_t last_activity_ms; /* last frame or stream byte moved */
	uint64_t passes, qemu_downtime_ms, ram_total, dirty_rate;
	double mbps;
	char cipher[64];
	char why[256]; /* a failure to report from a later turn of the loop */
};

/* ------------------------------------------------------------------ */

/*
 * QMP replies may outlive a migration, so their callbacks carry the
 * migration's id, not a pointer, and look it up among the live ones. The
 * daemon is one per process: the engine remembers it here.
 */
static struct smigd *mig_daemon;

static struct mig *mig_new(struct smigd *d, bool source)
{
	struct mig *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	mig_daemon = d;
	m->d = d;
	m->source = source;
	m->fd = -1;
	m->t_start = loop_now_ns();
	m->last_activity_ms = loop_now_ms();
	smig_buf_init(&m->pend, MIG_PEND_HIGH + SMIG_FRAME_MAX_PAYLOAD);
	m->next = d->migs;
	d->migs = m;
	return m;
}

static void mig_close_fd(struct mig *m)
{
	loop_watch_del(m->d->loop, m->w);
	m->w = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

static void mig_free(struct mig *m)
{
	for (struct mig **pp = &m->d->migs; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	mig_close_fd(m);
	loop_timer_cancel(m->d->loop, m->timer);
	if (m->vm && vm_mig(m->vm) == m)
		vm_set_mig(m->vm, NULL);
	if (m->peer)
		peer_release(m->peer);
	smig_buf_clear(&m->pend);
	json_decref(m->ref.id);
	free(m);
}

void mig_free_all(struct smigd *d)
{
	while (d->migs)
		mig_free(d->migs);
}

static double ms_between(uint64_t a_ns, uint64_t b_ns)
{
	return b_ns > a_ns ? (double)(b_ns - a_ns) / 1e6 : 0.0;
}

static void send_abort(struct mig *m, int code, const char *why)
{
	struct smig_mig_abort ab = { .id = m->id, .code = (uint16_t)-code };

	if (m->peer == NULL)
		return;
	snprintf(ab.reason, sizeof(ab.reason), "%s", why);
	(void)smig_msg_put_mig_abort(peer_tx(m->peer), &ab);
	peer_kick(m->peer);
}

static void send_id(struct mig *m, uint8_t type)
{
	if (m->peer == NULL)
		return;
	(void)smig_msg_put_mig_id(peer_tx(m->peer), type, m->id);
	peer_kick(m->peer);
}

/* ---------------------------- source ------------------------------ */

static void src_resume_source(struct mig *m);

/* Ends a source migration that failed before COMMIT: the VM stays here, running. */
__attribute__((format(printf, 3, 4)))
static void src_fail(struct mig *m, int code, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (m->state == MS_COMMITTING) {
		/* COMMIT is out: the destination may be running the VM. Stay paused. */
		smig_err("event=migration_unresolved vm=%s to=%s reason=\"%s\" action=source_paused",
			 m->vm_name, m->peer_host, why);
		if (m->ref.client_id)
			ctl_reply_err(m->d, &m->ref, "migration_failed",
				      "%s: commit sent to %s but not confirmed (%s); the VM stays "
				      "paused here until resolved",
				      m->vm_name, m->peer_host, why);
		mig_free(m);
		return;
	}
	smig_warn("event=migration_failed vm=%s to=%s state=%s reason=\"%s\" action=resume_source",
		  m->vm_name, m->peer_host, state_names[m->state], why);
	send_abort(m, code, why);
	mig_close_fd(m);
	src_resume_source(m);
	if (m->ref.client_id)
		ctl_reply_err(m->d, &m->ref, "migration_failed",
			      "%s to %s failed while %s: %s; the VM is running on %s", m->vm_name,
			      m->peer_host, state_names[m->state], why, m->d->cfg.host);
	mig_free(m);
}

static void on_cancel_cont(void *arg, const struct smig_qmp_msg *r)
{
	const char *vm = arg;

	if (r && r->kind == SMIG_QMP_RETURN)
		smig_info("event=vm_resumed vm=%s reason=migration_failed", vm);
	free(arg);
}

/* migrate_cancel, then cont: QEMU runs the VM again wherever the stream stopped. */
static void src_resume_source(struct mig *m)
{
	struct qmpconn *q = m->vm ? vm_qmp(m->vm) : NULL;

	if (q == NULL)
		return;
	(void)qmpconn_send(q, "migrate_cancel", NULL, -1, NULL, NULL);
	(void)qmpconn_send(q, "cont", NULL, -1, on_cancel_cont, strdup(m->vm_name));
}

static struct mig *mig_by_id(struct smigd *d, uint64_t id)
{
	for (struct mig *m = d ? d->migs : NULL; m; m = m->next)
		if (m->id == id)
			return m;
	return NULL;
}

static void *mig_cb_new(struct mig *m)
{
	return (void *)(uintptr_t)m->id; // NOLINT(performance-no-int-to-ptr)
}

static struct mig *mig_cb_take(void *arg)
{
	return mig_by_id(mig_daemon, (uint64_t)(uintptr_t)arg);
}

static void src_stats(struct mig *m, const json_t *ret)
{
	const json_t *ram = json_object_get(ret, "ram");
	const json_t *v;

	if ((v = json_object_get(ram, "dirty-sync-count")))
		m->passes = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ram, "total")))
		m->ram_total = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ram, "dirty-pages-rate")))
		m->dirty_rate = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ram, "mbps")))
		m->mbps = json_number_value(v);
	if ((v = json_object_get(ret, "downtime")))
		m->qemu_downtime_ms = (uint64_t)json_integer_value(v);
}

static void src_progress_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);
	const json_t *ram;
	double total, remaining, pct, eta;

	if (m == NULL || r == NULL || r->kind != SMIG_QMP_RETURN || !json_is_object(r->ret))
		return;
	src_stats(m, r->ret);
	ram = json_object_get(r->ret, "ram");
	if (ram == NULL || m->state != MS_STREAMING)
		return;
	total = (double)json_integer_value(json_object_get(ram, "total"));
	remaining = (double)json_integer_value(json_object_get(ram, "remaining"));
	pct = total > 0 ? 100.0 * (total - remaining) / total : 0;
	eta = m->mbps > 0 ? remaining * 8 / (m->mbps * 1e6) : -1;
	ctl_progress(m->d, &m->ref,
		     json_pack("{s:s,s:f,s:f,s:I,s:I,s:I,s:I,s:f}", "phase", "streaming", "percent",
			       pct, "mbps", m->mbps, "dirty_pages_rate", (json_int_t)m->dirty_rate,
			       "pass", (json_int_t)m->passes, "bytes", (json_int_t)m->bytes,
			       "remaining_bytes", (json_int_t)remaining, "eta_s", eta));
}

static void src_tick(void *arg)
{
	struct mig *m = arg;
	uint64_t now = loop_now_ms();

	m->timer = NULL;
	if (now - m->last_activity_ms > (uint64_t)m->d->cfg.stall_timeout_ms) {
		src_fail(m, SMIG_ETIMEDOUT, "nothing moved for %d ms while %s",
			 m->d->cfg.stall_timeout_ms, state_names[m->state]);
		return;
	}
	if (m->vm && vm_qmp(m->vm))
		(void)qmpconn_send(vm_qmp(m->vm), "query-migrate", NULL, -1, src_progress_reply,
				   mig_cb_new(m));
	(void)loop_timer_add(m->d->loop, MIG_PROGRESS_MS, src_tick, m, &m->timer);
}

static void src_commit_req(struct mig *m)
{
	struct smig_mig_commit_req cr = { .id = m->id, .bytes = m->bytes };

	if (m->state != MS_STREAMING || !m->qemu_done || !m->eof)
		return;
	m->state = MS_COMMIT_WAIT;
	smig_info("event=migration_commit_request vm=%s to=%s bytes=%llu", m->vm_name,
		  m->peer_host, (unsigned long long)m->bytes);
	ctl_progress(m->d, &m->ref, json_pack("{s:s,s:f}", "phase", "switch-over", "percent", 100.0));
	(void)smig_msg_put_mig_commit_req(peer_tx(m->peer), &cr);
	peer_kick(m->peer);
}

/* Moves what QEMU wrote into DATA frames, as long as the channel keeps up. */
static void src_read(struct mig *m)
{
	struct smig_buf *tx = peer_tx(m->peer);

	for (;;) {
		size_t mark;
		uint8_t *dst;
		ssize_t r;

		if (peer_tx_pending(m->peer) > MIG_TX_HIGH) {
			if (!m->reading_paused && m->w)
				(void)loop_watch_mod(m->d->loop, m->w, 0);
			m->reading_paused = true;
			break;
		}
		if (smig_frame_begin(tx, SMIG_MSG_MIG_DATA, &mark) < 0 ||
		    smig_buf_reserve(tx, MIG_CHUNK, &dst) < 0) {
			src_fail(m, SMIG_ENOMEM, "send buffer exhausted");
			return;
		}
		r = recv(m->fd, dst, MIG_CHUNK, MSG_DONTWAIT);
		if (r > 0) {
			smig_buf_commit(tx, (size_t)r);
			(void)smig_frame_end(tx, mark);
			m->bytes += (uint64_t)r;
			m->last_activity_ms = loop_now_ms();
			continue;
		}
		smig_frame_cancel(tx, mark); /* no data after all: drop the empty frame */
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r < 0) {
			src_fail(m, SMIG_EIO, "reading QEMU's stream: %s", strerror(errno));
			return;
		}
		m->eof = true; /* QEMU closed its end: the stream is complete or dead */
		mig_close_fd(m);
		src_commit_req(m);
		break;
	}
	peer_kick(m->peer);
}

static void src_fd_io(void *arg, uint32_t events)
{
	struct mig *m = arg;

	(void)events;
	src_read(m);
}

void mig_peer_tx_space(struct mig *m)
{
	m->last_activity_ms = loop_now_ms(); /* the peer is taking our data */
	if (!m->source || !m->reading_paused || m->fd < 0)
		return;
	m->reading_paused = false;
	(void)loop_watch_mod(m->d->loop, m->w, EPOLLIN);
}

static void src_qmp_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);

	if (m == NULL || (r && r->kind == SMIG_QMP_RETURN))
		return;
	src_fail(m, SMIG_EIO, "QEMU refused the migration: %s",
		 r ? r->error_desc : "no answer");
}

/* PREPARED: the destination's QEMU waits for the stream. Start QEMU's side. */
static void src_stream(struct mig *m)
{
	struct qmpconn *q = vm_qmp(m->vm);
	char fdname[40];
	int sv[2];
	int rc;

	m->t_prepared = loop_now_ns();
	if (q == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		src_fail(m, SMIG_EIO, "cannot create the stream socket");
		return;
	}
	snprintf(fdname, sizeof(fdname), "smig-%016llx", (unsigned long long)m->id);
	m->fd = sv[0];
	rc = loop_watch_add(m->d->loop, sv[0], EPOLLIN, src_fd_io, m, &m->w);
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-set-capabilities",
				  json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability",
					    "events", "state", 1),
				  -1, src_qmp_reply, mig_cb_new(m));
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-set-parameters",
				  json_pack("{s:I,s:I}", "downtime-limit",
					    (json_int_t)(m->opts.downtime_ms ? m->opts.downtime_ms : 300),
					    "max-bandwidth",
					    (json_int_t)(m->opts.max_bandwidth
								 ? (json_int_t)m->opts.max_bandwidth << 20
								 : (json_int_t)1 << 40)),
				  -1, src_qmp_reply, mig_cb_new(m));
	if (rc == 0)
		rc = qmpconn_send(q, "getfd", json_pack("{s:s}", "fdname", fdname), sv[1],
				  src_qmp_reply, mig_cb_new(m));
	close(sv[1]); /* QEMU holds its own copy now */
	if (rc == 0) {
		char uri[48];

		snprintf(uri, sizeof(uri), "fd:%s", fdname);
		rc = qmpconn_send(q, "migrate", json_pack("{s:s}", "uri", uri), -1, src_qmp_reply,
				  mig_cb_new(m));
	}
	if (rc < 0) {
		src_fail(m, SMIG_EIO, "cannot start QEMU's migration");
		return;
	}
	m->state = MS_STREAMING;
	smig_info("event=migration_streaming vm=%s to=%s setup_ms=%.1f", m->vm_name, m->peer_host,
		  ms_between(m->t_start, m->t_prepared));
}

static void src_done(struct mig *m)
{
	json_t *result;

	m->t_end = loop_now_ns();
	m->state = MS_DONE;
	result = json_pack("{s:s,s:s,s:s,s:s,s:f,s:f,s:I,s:f,s:I,s:I,s:f,s:s,s:s}", "status",
			   "completed", "vm", m->vm_name, "from", m->d->cfg.host, "to",
			   m->peer_host, "total_ms", ms_between(m->t_start, m->t_end),
			   "downtime_ms", m->t_stop ? ms_between(m->t_stop, m->t_end) : 0.0,
			   "qemu_downtime_ms", (json_int_t)m->qemu_downtime_ms, "setup_ms",
			   ms_between(m->t_start, m->t_prepared), "bytes", (json_int_t)m->bytes,
			   "passes", (json_int_t)m->passes, "mbps",
			   ms_between(m->t_prepared, m->t_end) > 0
				   ? (double)m->bytes * 8 / 1e3 / ms_between(m->t_prepared, m->t_end)
				   : 0.0,
			   "cipher", m->cipher, "peer_trust", "authenticated");
	smig_info("event=migration_completed vm=%s to=%s total_ms=%.1f downtime_ms=%.1f bytes=%llu",
		  m->vm_name, m->peer_host, ms_between(m->t_start, m->t_end),
		  m->t_stop ? ms_between(m->t_stop, m->t_end) : 0.0, (unsigned long long)m->bytes);
	vm_retire(m->vm); /* quit QEMU, wipe the vTPM state, forget the VM */
	m->vm = NULL;
	if (m->ref.client_id)
		ctl_reply_ok(m->d, &m->ref, result);
	else
		json_decref(result);
	mig_free(m);
}

static void src_frame(struct mig *m, const struct smig_frame *f)
{
	struct smig_mig_abort ab;
	uint64_t id = 0;

	if (f->type == SMIG_MSG_MIG_ABORT) {
		if (smig_msg_get_mig_abort(f, &ab) < 0 || ab.id != m->id)
			snprintf(ab.reason, sizeof(ab.reason), "malformed ABORT");
		if (m->state == MS_COMMITTING) {
			/* the destination discarded its copy before saying so: safe to resume */
			m->state = MS_COMMIT_WAIT;
		}
		src_fail(m, SMIG_EPROTO, "%s refused: %s", m->peer_host, ab.reason);
		return;
	}
	if ((f->type == SMIG_MSG_MIG_PREPARED || f->type == SMIG_MSG_MIG_READY ||
	     f->type == SMIG_MSG_MIG_COMMITTED) &&
	    (smig_msg_get_mig_id(f, f->type, &id) < 0 || id != m->id)) {
		src_fail(m, SMIG_EPROTO, "bad %s from %s", smig_frame_type_name(f->type),
			 m->peer_host);
		return;
	}
	if (f->type == SMIG_MSG_MIG_PREPARED && m->state == MS_PREPARING) {
		src_stream(m);
	} else if (f->type == SMIG_MSG_MIG_READY && m->state == MS_COMMIT_WAIT) {
		m->state = MS_COMMITTING;
		m->t_commit = loop_now_ns();
		send_id(m, SMIG_MSG_MIG_COMMIT);
	} else if (f->type == SMIG_MSG_MIG_COMMITTED && m->state == MS_COMMITTING) {
		src_done(m);
	} else {
		src_fail(m, SMIG_EPROTO, "unexpected %s from %s while %s",
			 smig_frame_type_name(f->type), m->peer_host, state_names[m->state]);
	}
}

void mig_peer_ready(struct mig *m)
{
	struct smig_mig_prepare mp = { .id = m->id };
	uint8_t key[SMIG_MIG_KEY_LEN];
	char *spec;
	int rc;

	snprintf(m->cipher, sizeof(m->cipher), "%s", peer_cipher(m->peer));
	if (smig_vmspec_dump(vm_spec(m->vm), &spec) < 0) {
		src_fail(m, SMIG_ENOMEM, "cannot serialise the spec");
		return;
	}
	mp.spec = spec;
	mp.spec_len = strlen(spec);
	if (vm_spec(m->vm)->vtpm) {
		if (vm_get_tpm_key(m->vm, key, sizeof(key)) < 0) {
			free(spec);
			src_fail(m, SMIG_ENOENT, "the vTPM state key is missing");
			return;
		}
		mp.has_key = 1;
		memcpy(mp.key, key, sizeof(key));
		OPENSSL_cleanse(key, sizeof(key));
	}
	rc = smig_msg_put_mig_prepare(peer_tx(m->peer), &mp);
	OPENSSL_cleanse(mp.key, sizeof(mp.key));
	free(spec);
	if (rc < 0) {
		src_fail(m, rc, "cannot encode PREPARE");
		return;
	}
	m->state = MS_PREPARING;
	ctl_progress(m->d, &m->ref, json_pack("{s:s,s:s}", "phase", "preparing", "cipher",
					       m->cipher));
	peer_kick(m->peer);
}

void mig_start(struct smigd *d, const char *name, const char *to, const struct mig_opts *o,
	       struct ctl_ref *ref)
{
	struct vm *vm = vm_find(d, name);
	struct mig *m;
	char err[256];

	if (vm == NULL) {
		ctl_reply_err(d, ref, "not_found", "no VM named %s on %s", name, d->cfg.host);
		return;
	}
	if (vm_state(vm) != VM_RUNNING || vm_mig(vm)) {
		ctl_reply_err(d, ref, "error", "%s is %s%s; only a running VM migrates", name,
			      vm_state_name(vm_state(vm)), vm_mig(vm) ? " and migrating" : "");
		return;
	}
	if (strcmp(to, d->cfg.host) == 0 || smig_hosts_by_name(&d->hosts, to) == NULL) {
		ctl_reply_err(d, ref, "not_found", "%s is %s", to,
			      strcmp(to, d->cfg.host) == 0 ? "this host"
							   : "not in the host table");
		return;
	}
	m = mig_new(d, true);
	if (m == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	(void)RAND_bytes((unsigned char *)&m->id, sizeof(m->id));
	m->id ^= ++d->next_mig_id;
	m->vm = vm;
	m->opts = *o;
	m->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", name);
	snprintf(m->peer_host, sizeof(m->peer_host), "%s", to);
	vm_set_mig(vm, m);
	smig_info("event=migration_start vm=%s to=%s id=%016llx", name, to,
		  (unsigned long long)m->id);
	m->peer = peer_connect_mig(d, to, m, err, sizeof(err));
	if (m->peer == NULL) {
		ctl_reply_err(d, &m->ref, "unreachable", "%s", err);
		mig_free(m);
		return;
	}
	ctl_progress(d, &m->ref, json_pack("{s:s,s:s}", "phase", "connecting", "to", to));
	(void)loop_timer_add(d->loop, MIG_PROGRESS_MS, src_tick, m, &m->timer);
}

void mig_cancel(struct smigd *d, const char *vm, struct ctl_ref *ref)
{
	for (struct mig *m = d->migs; m; m = m->next) {
		if (m->source && strcmp(m->vm_name, vm) == 0) {
			if (m->state >= MS_COMMITTING) {
				ctl_reply_err(d, ref, "error", "%s is already committing", vm);
				return;
			}
			src_fail(m, SMIG_EINVAL, "cancelled by the operator");
			ctl_reply_ok(d, ref, json_pack("{s:s,s:s}", "vm", vm, "status", "cancelled"));
			return;
		}
	}
	ctl_reply_err(d, ref, "not_found", "%s is not migrating from here", vm);
}


/* -------------------------- destination --------------------------- */

/* Drops the incoming VM and the migration; tells the source when send is set. */
__attribute__((format(printf, 4, 5)))
static void dst_abort(struct mig *m, bool send, int code, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	smig_warn("event=migration_aborted vm=%s from=%s state=%s reason=\"%s\" "
		  "action=discard_incoming",
		  m->vm_name, m->peer_host, state_names[m->state], why);
	mig_close_fd(m);
	if (m->vm) {
		vm_discard(m->vm); /* QEMU and swtpm killed, state removed, before ABORT */
		m->vm = NULL;
	}
	if (send)
		send_abort(m, code, why);
	mig_free(m);
}

static void dst_maybe_ready(struct mig *m)
{
	if (m->state != MS_COMMIT_WAIT || m->ready_sent || !m->qemu_done ||
	    smig_buf_remaining(&m->pend) > 0)
		return;
	mig_close_fd(m);
	m->ready_sent = true;
	smig_info("event=migration_ready vm=%s from=%s bytes=%llu", m->vm_name, m->peer_host,
		  (unsigned long long)m->bytes);
	send_id(m, SMIG_MSG_MIG_READY);
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
			dst_abort(m, true, SMIG_EIO, "QEMU stopped taking the stream: %s",
				  strerror(errno));
			return;
		}
		(void)smig_buf_consume(&m->pend, (size_t)w);
	}
	if (m->w)
		(void)loop_watch_mod(m->d->loop, m->w, smig_buf_remaining(&m->pend) ? EPOLLOUT : 0);
	if (m->peer && smig_buf_remaining(&m->pend) < MIG_PEND_LOW)
		peer_rx_pause(m->peer, false);
	dst_maybe_ready(m);
}

static void dst_fd_io(void *arg, uint32_t events)
{
	struct mig *m = arg;

	if ((events & (EPOLLERR | EPOLLHUP)) && smig_buf_remaining(&m->pend) == 0) {
		/*
		 * QEMU closes its end once it has loaded the whole state; whether it
		 * succeeded is told by its MIGRATION event, which may come later.
		 */
		mig_close_fd(m);
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		dst_abort(m, true, SMIG_EIO, "QEMU closed the incoming stream with %zu bytes unread",
			  smig_buf_remaining(&m->pend));
		return;
	}
	dst_flush(m);
}

static void dst_data(struct mig *m, const struct smig_frame *f)
{
	size_t off = 0;

	if (m->fd < 0) {
		dst_abort(m, true, SMIG_EPROTO, "stream data after QEMU finished loading");
		return;
	}
	m->bytes += f->len;
	if (smig_buf_remaining(&m->pend) == 0) {
		ssize_t w = send(m->fd, f->payload, f->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0)
			off = (size_t)w;
	}
	if (off < f->len && smig_buf_put_bytes(&m->pend, f->payload + off, f->len - off) < 0) {
		dst_abort(m, true, SMIG_ENOMEM, "stream buffer exhausted");
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
	dst_abort(m, true, SMIG_EIO, "QEMU refused the incoming migration: %s",
		  r ? r->error_desc : "no answer");
}

static void dst_incoming_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);

	if (m == NULL)
		return;
	if (r == NULL || r->kind != SMIG_QMP_RETURN) {
		dst_abort(m, true, SMIG_EIO, "migrate-incoming failed: %s",
			  r ? r->error_desc : "no answer");
		return;
	}
	m->state = MS_STREAMING;
	send_id(m, SMIG_MSG_MIG_PREPARED);
}

static void dst_tick(void *arg)
{
	struct mig *m = arg;

	m->timer = NULL;
	if (m->state != MS_COMMITTING &&
	    loop_now_ms() - m->last_activity_ms > (uint64_t)m->d->cfg.stall_timeout_ms) {
		dst_abort(m, true, SMIG_ETIMEDOUT, "nothing arrived for %d ms while %s",
			  m->d->cfg.stall_timeout_ms, state_names[m->state]);
		return;
	}
	(void)loop_timer_add(m->d->loop, MIG_PROGRESS_MS, dst_tick, m, &m->timer);
}

static void dst_abort_later(void *arg)
{
	struct mig *m = arg;

	m->timer = NULL;
	dst_abort(m, true, SMIG_EIO, "%s", m->why);
}

/* The incoming QEMU is up: give it the stream socket and wait for DATA. */
static void dst_started(void *arg, bool ok, const char *why)
{
	struct mig *m = arg;
	struct qmpconn *q;
	char fdname[40];
	char uri[48];
	int sv[2];
	int rc;

	if (!ok) {
		/* inside the VM manager's own callback: discard the VM on the next turn */
		snprintf(m->why, sizeof(m->why), "cannot start the VM here: %s", why);
		loop_timer_cancel(m->d->loop, m->timer);
		(void)loop_timer_add(m->d->loop, 0, dst_abort_later, m, &m->timer);
		return;
	}
	q = vm_qmp(m->vm);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		dst_abort(m, true, SMIG_EIO, "cannot create the stream socket");
		return;
	}
	m->fd = sv[0];
	snprintf(fdname, sizeof(fdname), "smig-%016llx", (unsigned long long)m->id);
	snprintf(uri, sizeof(uri), "fd:%s", fdname);
	rc = loop_watch_add(m->d->loop, sv[0], 0, dst_fd_io, m, &m->w);
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-set-capabilities",
				  json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability",
					    "events", "state", 1),
				  -1, dst_qmp_reply, mig_cb_new(m));
	if (rc == 0)
		rc = qmpconn_send(q, "getfd", json_pack("{s:s}", "fdname", fdname), sv[1],
				  dst_qmp_reply, mig_cb_new(m));
	close(sv[1]);
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-incoming", json_pack("{s:s}", "uri", uri), -1,
				  dst_incoming_reply, mig_cb_new(m));
	if (rc < 0)
		dst_abort(m, true, SMIG_EIO, "cannot talk to the incoming QEMU");
}

static void dst_prepare(struct smigd *d, struct peer *p, const struct smig_frame *f)
{
	struct smig_mig_prepare mp;
	struct smig_vmspec spec;
	char name[SMIG_NAME_MAX + 16];
	char err[512];
	struct mig *m;

	m = mig_new(d, false);
	if (m == NULL)
		return;
	m->peer = p;
	snprintf(m->peer_host, sizeof(m->peer_host), "%s", peer_name(p));
	peer_attach_mig(p, m);
	if (smig_msg_get_mig_prepare(f, &mp) < 0) {
		dst_abort(m, true, SMIG_EPROTO, "malformed PREPARE");
		return;
	}
	m->id = mp.id;
	snprintf(name, sizeof(name), "spec from %s", m->peer_host);
	if (smig_vmspec_parse(name, mp.spec, mp.spec_len, &spec, err, sizeof(err)) < 0) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		dst_abort(m, true, SMIG_ECONFIG, "%s", err);
		return;
	}
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", spec.name);
	if (spec.vtpm != (mp.has_key == 1)) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		dst_abort(m, true, SMIG_EPROTO, "vTPM key %s", spec.vtpm ? "missing" : "unexpected");
		return;
	}
	m->vm = vm_new_incoming(d, &spec, err, sizeof(err));
	if (m->vm == NULL) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		dst_abort(m, true, SMIG_EEXIST, "%s", err);
		return;
	}
	if (spec.vtpm && vm_set_tpm_key(m->vm, mp.key, sizeof(mp.key)) < 0) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		dst_abort(m, true, SMIG_EIO, "cannot store the vTPM key");
		return;
	}
	OPENSSL_cleanse(mp.key, sizeof(mp.key));
	vm_set_mig(m->vm, m);
	m->state = MS_PREPARING;
	smig_info("event=migration_incoming vm=%s from=%s id=%016llx", m->vm_name, m->peer_host,
		  (unsigned long long)m->id);
	(void)loop_timer_add(d->loop, MIG_PROGRESS_MS, dst_tick, m, &m->timer);
	vm_start_incoming(m->vm, dst_started, m);
}

static void dst_resumed(void *arg, bool ok, const char *why)
{
	struct mig *m = arg;

	if (!ok) {
		snprintf(m->why, sizeof(m->why), "cannot resume the VM here: %s", why);
		loop_timer_cancel(m->d->loop, m->timer);
		(void)loop_timer_add(m->d->loop, 0, dst_abort_later, m, &m->timer);
		return;
	}
	m->state = MS_DONE;
	vm_adopt_incoming(m->vm);
	vm_set_mig(m->vm, NULL);
	m->vm = NULL;
	smig_info("event=migration_committed vm=%s from=%s bytes=%llu", m->vm_name, m->peer_host,
		  (unsigned long long)m->bytes);
	send_id(m, SMIG_MSG_MIG_COMMITTED);
	mig_free(m);
}

static void dst_frame(struct mig *m, const struct smig_frame *f)
{
	struct smig_mig_commit_req cr;
	struct smig_mig_abort ab;
	uint64_t id = 0;

	if (f->type == SMIG_MSG_MIG_DATA && m->state == MS_STREAMING) {
		dst_data(m, f);
	} else if (f->type == SMIG_MSG_MIG_COMMIT_REQ && m->state == MS_STREAMING) {
		if (smig_msg_get_mig_commit_req(f, &cr) < 0 || cr.id != m->id) {
			dst_abort(m, true, SMIG_EPROTO, "bad COMMIT_REQ");
		} else if (cr.bytes != m->bytes) {
			dst_abort(m, true, SMIG_EPROTO, "stream length differs: sent %llu, got %llu",
				  (unsigned long long)cr.bytes, (unsigned long long)m->bytes);
		} else {
			m->state = MS_COMMIT_WAIT;
			dst_maybe_ready(m);
		}
	} else if (f->type == SMIG_MSG_MIG_COMMIT && m->state == MS_COMMIT_WAIT && m->ready_sent) {
		if (smig_msg_get_mig_id(f, f->type, &id) < 0 || id != m->id) {
			dst_abort(m, true, SMIG_EPROTO, "bad COMMIT");
			return;
		}
		m->state = MS_COMMITTING;
		vm_resume(m->vm, dst_resumed, m);
	} else if (f->type == SMIG_MSG_MIG_ABORT) {
		if (smig_msg_get_mig_abort(f, &ab) < 0)
			snprintf(ab.reason, sizeof(ab.reason), "malformed ABORT");
		dst_abort(m, false, SMIG_EPROTO, "the source aborted: %s", ab.reason);
	} else {
		dst_abort(m, true, SMIG_EPROTO, "unexpected %s while %s",
			  smig_frame_type_name(f->type), state_names[m->state]);
	}
}

/* ---------------------------- shared ------------------------------ */

void mig_peer_frame(struct smigd *d, struct peer *p, struct mig *m, const struct smig_frame *f)
{
	if (m)
		m->last_activity_ms = loop_now_ms();
	if (m == NULL) {
		if (f->type == SMIG_MSG_MIG_PREPARE) {
			dst_prepare(d, p, f);
			return;
		}
		smig_warn("event=protocol_violation host=%s reason=\"%s outside a migration\"",
			  peer_name(p), smig_frame_type_name(f->type));
		peer_release(p);
		return;
	}
	if (m->source)
		src_frame(m, f);
	else
		dst_frame(m, f);
}

void mig_peer_lost(struct mig *m, const char *why)
{
	m->peer = NULL;
	if (m->source) {
		src_fail(m, SMIG_ECLOSED, "lost the connection to %s: %s", m->peer_host, why);
		return;
	}
	if (m->state == MS_COMMITTING)
		return; /* COMMIT arrived: the VM is being resumed here; finish that */
	dst_abort(m, false, SMIG_ECLOSED, "lost the connection to %s: %s", m->peer_host, why);
}

void mig_vm_event(struct mig *m, const struct smig_qmp_msg *ev)
{
	const char *status = json_string_value(json_object_get(ev->data, "status"));

	if (m->source && strcmp(ev->event, "STOP") == 0 && m->state == MS_STREAMING) {
		m->t_stop = loop_now_ns();
		return;
	}
	if (strcmp(ev->event, "MIGRATION") != 0 || status == NULL)
		return;
	smig_debug("event=qemu_migration vm=%s status=%s", m->vm_name, status);
	if (strcmp(status, "completed") == 0) {
		m->qemu_done = true;
		if (m->source) {
			if (m->vm && vm_qmp(m->vm))
				(void)qmpconn_send(vm_qmp(m->vm), "query-migrate", NULL, -1,
						   src_progress_reply, mig_cb_new(m));
			src_commit_req(m);
		} else {
			dst_maybe_ready(m);
		}
	} else if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
		if (m->source)
			src_fail(m, SMIG_EIO, "QEMU reports the migration %s", status);
		else
			dst_abort(m, true, SMIG_EIO, "the incoming QEMU reports the migration %s",
				  status);
	}
}

void mig_vm_exited(struct mig *m)
{
	if (m->source) {
		m->vm = NULL;
		src_fail(m, SMIG_EIO, "QEMU exited during the migration");
	} else {
		/* called by the VM manager: discard the VM on the next turn of the loop */
		snprintf(m->why, sizeof(m->why), "the incoming QEMU exited");
		loop_timer_cancel(m->d->loop, m->timer);
		(void)loop_timer_add(m->d->loop, 0, dst_abort_later, m, &m->timer);
	}
}
