/*
 * migrate.c - the migration record (mig_int.h): the engine's list of
 * migrations, a record's life, its one place of state change, its trace
 * in test builds, and what both sides send alike (ABORT, the id-only
 * messages). Both sides (mig_src.c, mig_dst.c, mig_resolve.c) stand on
 * it; the dispatch to them is engine.c's.
 */
#include "migration/mig_int.h"
#include "buf.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "vm/vm.h"

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

/* d->migrations: the migrations not yet done, either way (what the policy counts). */
static void mig_recount(struct smigd *d)
{
	unsigned n = 0;

	for (const struct mig *m = d->migs ? d->migs->head : NULL; m; m = m->next)
		n += m->p.state != SMIG_MST_DONE && !m->queued;
	d->migrations = n;
	d->stats.gen++;
}

int mig_list_init(struct smigd *d)
{
	d->migs = calloc(1, sizeof(*d->migs));
	if (d->migs == NULL)
		return SMIG_ENOMEM;
	mig_daemon = d;
	d->migrations = 0;
	return 0;
}

uint64_t mig_next_serial(struct smigd *d)
{
	return ++d->migs->next_id;
}

void mig_id_set(struct mig *m, const struct smig_mig_id *id)
{
	m->p.id = *id;
	smig_mig_id_format(id, m->ids);
}

void mig_progress(struct mig *m, json_t *p)
{
	if (p == NULL)
		return;
	if (strcmp(m->ids, "-") != 0)
		(void)json_object_set_new(p, "id", json_string(m->ids));
	json_decref(m->last_progress);
	m->last_progress = p;
	ctl_followers_send(m->d, &m->watchers, p);
	ctl_progress(m->d, &m->ref, json_incref(p));
}

void mig_reply_ok(struct mig *m, json_t *result)
{
	ctl_followers_reply(m->d, &m->watchers, result, NULL, NULL);
	if (ctl_ref_waits(&m->ref))
		ctl_reply_ok(m->d, &m->ref, result);
	else
		json_decref(result);
}

void mig_reply_err(struct mig *m, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_followers_reply(m->d, &m->watchers, NULL, code, msg);
	if (ctl_ref_waits(&m->ref))
		ctl_reply_err(m->d, &m->ref, code, "%s", msg);
}

struct mig *mig_new(struct smigd *d, bool source)
{
	struct mig *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->d = d;
	smig_migproto_init(&m->p, source, NULL);
	m->serial = mig_next_serial(d);
	snprintf(m->ids, sizeof(m->ids), "-");
	m->fd = -1;
	m->trace_fd = -1;
	m->t_start = loop_now_ns();
	m->last_activity_ms = loop_now_ms();
	m->outcome = STATS_FAILED;
	m->wall_start_ms = loop_wall_ms();
	smig_buf_init(&m->pend, MIG_PEND_HIGH + SMIG_FRAME_MAX_PAYLOAD);
	m->next = d->migs->head;
	d->migs->head = m;
	mig_recount(d);
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
	uint8_t head[1 + SMIG_MIG_ID_LEN + 8];
	char path[512];

	if (dir == NULL || *dir == '\0')
		return;
	if (m->trace_fd < 0) {
		snprintf(path, sizeof(path), "%s/%s-%d-%llu-%s.trace", dir,
			 m->p.source ? "src" : "dst", (int)getpid(), (unsigned long long)m->serial,
			 m->ids);
		m->trace_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (m->trace_fd < 0)
			return;
		head[0] = m->p.source;
		memcpy(head + 1, m->p.id.b, SMIG_MIG_ID_LEN);
		for (int i = 0; i < 8; i++)
			head[1 + SMIG_MIG_ID_LEN + i] = (uint8_t)(m->p.budget >> (56 - 8 * i));
		if (write(m->trace_fd, head, sizeof(head)) < 0)
			return;
	}
	if (write(m->trace_fd, &op, 1) < 0 || (len && write(m->trace_fd, rec, len) < 0))
		smig_debug("event=trace_write_failed vm=%s", m->vm_name);
}

void mig_trace_frame(struct mig *m, const struct smig_frame *f)
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

void mig_trace_frame(struct mig *m, const struct smig_frame *f)
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
		smig_err("event=migration_state_illegal vm=%s %s=%s id=%s from=%s to=%s "
			 "action=abort",
			 m->vm_name, m->p.source ? "to" : "from", m->peer_host,
			 m->ids, smig_mst_names[from], smig_mst_names[to]);
		abort();
	}
	smig_debug("event=migration_state vm=%s id=%s from=%s to=%s", m->vm_name, m->ids,
		   smig_mst_names[from], smig_mst_names[to]);
	mig_trace(m, 'S', &rec, 1);
	mig_recount(m->d);
}

void mig_close_fd(struct mig *m)
{
	loop_watch_del(m->d->loop, m->w);
	m->w = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

void mig_hold_release(struct smigd *d, const char *host, const char *vm)
{
	struct smig_reserve r = { .release = true, .vcpus = 1 };
	char err[256];

	snprintf(r.vm, sizeof(r.vm), "%s", vm);
	if (peer_reserve(d, host, &r, NULL, NULL, err, sizeof(err)) < 0)
		smig_debug("event=hold_release_failed vm=%s to=%s reason=\"%s\"", vm, host, err);
}

/* Releases a record already taken off the daemon's list. */
static void mig_release(struct mig *m)
{
	mig_chans_free(m); /* its threads first: they write to sockets closed below */
	mig_close_fd(m);
	loop_timer_cancel(m->d->loop, m->timer);
	loop_timer_cancel(m->d->loop, m->chan_timer);
	loop_timer_cancel(m->d->loop, m->handover_t);
	loop_timer_cancel(m->d->loop, m->fleet_t);
	if (m->p.source)
		mig_src_fleet_done(m);
	agent_ping_cancel(m->agent_ping);
	if (m->vm && vm_mig(m->vm) == m)
		vm_set_mig(m->vm, NULL);
	if (m->peer)
		peer_release(m->peer);
	smig_buf_clear(&m->pend);
	/* whoever still watches hears how to learn the end (smigd stops, or m ended unanswered) */
	ctl_followers_reply(m->d, &m->watchers, NULL, "migration_gone",
			    "the migration is no longer followed here: smig migrate show says how "
			    "it ended, smig vm show where the VM is");
	json_decref(m->last_progress);
	json_decref(m->ref.id);
	if (m->trace_fd >= 0)
		close(m->trace_fd);
	free(m);
}

static void mig_dequeue_tick(void *arg)
{
	struct smigd *d = arg;

	d->migs->dequeue_t = NULL;
	mig_src_dequeue(d);
}

void mig_dequeue_soon(struct smigd *d)
{
	if (d->migs && d->migs->head && !d->migs->dequeue_t)
		(void)loop_timer_add(d->loop, 0, mig_dequeue_tick, d, &d->migs->dequeue_t);
}

void mig_free(struct mig *m)
{
	struct smigd *d = m->d;

	if (m->queued) /* cancelled, or its VM gone, while it waited */
		m->queued_ms += loop_now_ms() - m->queued_at_ms;
	if (!m->no_record) {
		mig_history_add(m);
		stats_migration_end(d, m->p.source, m->outcome, mig_bytes(m), m->passes,
				    m->t_end ? (double)(m->t_end - m->t_start) / 1e9 : 0.0,
				    m->t_end && m->t_stop ? (double)(m->t_end - m->t_stop) / 1e9
							  : -1.0);
	}
	for (struct mig **pp = &d->migs->head; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	/* a hold the destination keeps for it until its PREPARE (never answered): let go */
	if (m->p.source && m->opts.held && m->t_prepared == 0)
		mig_hold_release(d, m->peer_host, m->vm_name);
	mig_release(m);
	mig_recount(d);
	mig_dequeue_soon(d); /* the next queued one, from a turn of the loop of its own */
}

void mig_free_all(struct smigd *d)
{
	if (d->migs == NULL)
		return;
	while (d->migs->head) {
		struct mig *m = d->migs->head;
		d->migs->head = m->next;
		mig_release(m);
	}
	mig_history_free(d);
	loop_timer_cancel(d->loop, d->migs->dequeue_t);
	free(d->migs);
	d->migs = NULL;
	d->migrations = 0;
}

size_t mig_active(const struct smigd *d, struct mig_active *out, size_t max)
{
	size_t n = 0;

	for (const struct mig *m = d->migs ? d->migs->head : NULL; m; m = m->next) {
		struct mig_active *a = n < max ? &out[n] : NULL;

		if (m->p.state == SMIG_MST_DONE)
			continue;
		if (a) {
			snprintf(a->vm, sizeof(a->vm), "%s", m->vm_name);
			snprintf(a->peer, sizeof(a->peer), "%s", m->peer_host);
			a->out = m->p.source;
			a->state = m->queued ? "queued" : smig_mst_names[m->p.state];
			a->queued = m->queued;
			a->bytes = mig_bytes(m);
			a->ram_total = m->ram_total;
			a->ram_remaining = m->ram_remaining;
			a->dirty_rate = m->dirty_rate * (m->page_size ? m->page_size : 4096);
			a->passes = m->passes;
		}
		n++;
	}
	return n;
}

json_t *mig_json(const struct mig *m)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s}", m->p.source ? "to" : "from", m->peer_host, "id",
			      m->ids, "state", m->queued ? "queued" : smig_mst_names[m->p.state],
			      "why", m->why);

	if (o && m->policy[0])
		json_object_set_new(o, "policy", json_string(m->policy));
	if (o && m->esc_step) /* the job's escalation so far */
		json_object_set_new(o, "escalation",
				    json_pack("{s:I,s:I,s:b,s:i}", "step", (json_int_t)m->esc_step,
					      "downtime_limit_ms", (json_int_t)m->esc_downtime_ms,
					      "auto_converge", m->esc_throttle, "cpu_throttle_percent",
					      m->throttle_pct));
	return o;
}

void mig_abandon(struct mig *m)
{
	if (!mig_resolving(m))
		return; /* COMMIT still being answered: nothing to force (vm.c checks first) */
	smig_warn("event=migration_abandoned vm=%s peer=%s id=%s state=%s", m->vm_name,
		  m->peer_host, m->ids, smig_mst_names[m->p.state]);
	if (m->vm)
		vm_set_mig(m->vm, NULL);
	m->vm = NULL;
	mig_reply_err(m, "migration_failed",
		      "%s: the operator resumed the VM here over the unconfirmed commit",
		      m->vm_name);
	mig_set_state(m, SMIG_MST_DONE);
	mig_free(m);
}

bool mig_resolving(const struct mig *m)
{
	return m->p.state == SMIG_MST_RESOLVING;
}

struct mig *mig_job(const struct smigd *d, const char *job)
{
	size_t n = strlen(job);

	for (struct mig *m = d->migs ? d->migs->head : NULL; m; m = m->next)
		if (m->p.source && strcmp(m->vm_name, job) == 0)
			return m;
	if (n < 8 || n >= SMIG_MIG_ID_STR_LEN || strspn(job, "0123456789abcdef") != n)
		return NULL;
	for (struct mig *m = d->migs ? d->migs->head : NULL; m; m = m->next)
		if (m->p.source && strncmp(m->ids, job, n) == 0)
			return m;
	return NULL;
}

const char *mig_target(const struct smigd *d, const char *job, const char **vm)
{
	const struct mig *m = mig_job(d, job);

	if (vm)
		*vm = m ? m->vm_name : NULL;
	return m ? m->peer_host : NULL;
}

void mig_watch(struct smigd *d, const char *job, struct ctl_ref *ref)
{
	struct mig *m = mig_job(d, job);
	json_t *items;

	if (m == NULL) {
		ctl_reply_err(d, ref, "not_found",
			      "no migration of a VM or with an id %s leaves this host now (smig "
			      "migrate list shows those that ended; a VM arriving is watched on its "
			      "source)",
			      job);
		return;
	}
	items = json_array();
	if (m->last_progress) { /* as sent then, with the id it may have had since */
		json_t *p = json_deep_copy(m->last_progress);

		if (p && strcmp(m->ids, "-") != 0)
			(void)json_object_set_new(p, "id", json_string(m->ids));
		(void)json_array_append_new(items, p);
	}
	ctl_follow(d, &m->watchers, ref, items);
	json_decref(items);
	smig_info("event=migration_watched vm=%s to=%s id=%s uid=%d", m->vm_name, m->peer_host,
		  m->ids, ref->has_cred ? (int)ref->cred.uid : -1);
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
		(void)smig_msg_put_mig_ready(peer_tx(m->peer), &m->p.id, dst_protections(m));
	else
		(void)smig_msg_put_mig_id(peer_tx(m->peer), type, &m->p.id);
	peer_send_now(m->peer); /* PREPARED, READY, COMMIT, COMMITTED: each one waits on it */
}

static struct mig *mig_by_serial(struct smigd *d, uint64_t serial)
{
	for (struct mig *m = d && d->migs ? d->migs->head : NULL; m; m = m->next)
		if (m->serial == serial)
			return m;
	return NULL;
}

void *mig_cb_new(struct mig *m)
{
	return (void *)(uintptr_t)m->serial; // NOLINT(performance-no-int-to-ptr)
}

struct mig *mig_cb_take(void *arg)
{
	return mig_by_serial(mig_daemon, (uint64_t)(uintptr_t)arg);
}
