/*
 * mig_src.c - the source side of a migration: connect and PREPARE, hand
 * QEMU its end of the stream socket, relay QEMU's stream as MIG_DATA with
 * flow control, progress, and the switch-over from COMMIT_REQ to
 * COMMITTED; every failure before COMMIT resumes the VM here. After
 * COMMITTED the VM is gone from here; the result waits for the
 * destination's SETTLED, which says whether the guest survived its watch.
 */
#include "migration/mig_int.h"
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

#define HANDOVER_RETRY_MS 1000 /* a source whose QEMU is gone asks the fleet store again */

/*
 * Ends a source migration that failed before COMMIT: the VM stays here,
 * running, unless its QEMU here is gone. After COMMIT the answer may be
 * lost, not the VM: mig_resolve.c finds out where it runs.
 */
void mig_src_fail(struct mig *m, int code, const char *fmt, ...)
{
	bool here = m->vm && vm_qmp(m->vm) && vm_qemu_alive(m->vm) && !m->src_gone;
	char why[256], where[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (m->reason[0] == '\0')
		snprintf(m->reason, sizeof(m->reason), "%s", why);
	if (m->p.state == SMIG_MST_SETTLING) {
		mig_src_settle_lost(m, why);
		return;
	}
	if (m->p.state == SMIG_MST_RESOLVING)
		return; /* already asking the destination */
	if (m->p.state == SMIG_MST_COMMITTING) {
		/* COMMIT is out: the destination may be running the VM. Stay paused, ask. */
		mig_resolve_begin(m, why);
		return;
	}
	if (here && m->handover_asked) {
		snprintf(where, sizeof(where),
			 "the VM stays on %s, paused until its owner record in the fleet store is "
			 "taken back from %s (smig vm show %s)",
			 m->d->cfg.host, m->peer_host, m->vm_name);
		smig_warn("event=migration_failed vm=%s to=%s state=%s reason=\"%s\" "
			  "action=resume_source_once_record_back",
			  m->vm_name, m->peer_host, smig_mst_names[m->p.state], why);
	} else if (here) {
		snprintf(where, sizeof(where), "the VM is running on %s", m->d->cfg.host);
		smig_warn("event=migration_failed vm=%s to=%s state=%s reason=\"%s\" "
			  "action=resume_source",
			  m->vm_name, m->peer_host, smig_mst_names[m->p.state], why);
	} else {
		snprintf(where, sizeof(where),
			 "its QEMU on %s is gone and %s kept no copy, so the VM runs nowhere: "
			 "start it again with smig vm start %s (its disks are as the guest left "
			 "them)",
			 m->d->cfg.host, m->peer_host, m->vm_name);
		smig_err("event=migration_failed vm=%s to=%s state=%s reason=\"%s\" "
			 "action=none_vm_lost_here",
			 m->vm_name, m->peer_host, smig_mst_names[m->p.state], why);
	}
	mig_send_abort(m, code, why);
	mig_close_fd(m);
	if (m->vm) {
		vm_commit_clear(m->vm);
		vm_outgoing_clear(m->vm); /* the VM stays here */
	}
	if (here && m->t_prepared) /* QEMU's migrate was issued: undo it, run the guest again */
		mig_src_resume(m);
	/* a peer that never answered, or failed its handshake: exit 4, not a failed move */
	if (code == SMIG_ECLOSED && m->p.state == SMIG_MST_CONNECTING)
		code = SMIG_EUNREACH;
	mig_reply_err(m,
		      code == SMIG_EDENIED	 ? "denied"
		      : code == SMIG_EAUTH	 ? "untrusted"
		      : code == SMIG_ECAPACITY ? "capacity"
		      : code == SMIG_ENOENT	 ? "resources"
		      : code == SMIG_EUNREACH  ? "unreachable"
					       : "migration_failed",
		      "%s to %s failed while %s: %s; %s", m->vm_name, m->peer_host,
		      smig_mst_names[m->p.state], why, where);
	mig_set_state(m, SMIG_MST_DONE);
	mig_free(m);
}

static void on_source_resumed(void *arg, bool ok, const char *why)
{
	char *vm = arg;

	if (ok)
		smig_info("event=vm_resumed vm=%s reason=migration_failed", vm);
	else
		smig_err("event=vm_resume_failed vm=%s reason=\"%s\" action=left_paused "
			 "hint=\"smig vm resume %s\"",
			 vm, why, vm);
	free(vm);
}

/*
 * migrate_cancel, then cont: QEMU runs the VM again wherever the stream
 * stopped. The VM's state comes from cont's answer, not from QEMU's
 * events: a failing outgoing migration may resume the guest by itself.
 */
void mig_src_resume(struct mig *m)
{
	struct qmpconn *q = m->vm ? vm_qmp(m->vm) : NULL;
	char *name;

	if (q == NULL)
		return;
	if (!smig_migproto_may_resume(&m->p)) {
		/* a bug that could run the VM twice: the restarted smigd asks instead */
		smig_err("event=migration_resume_illegal vm=%s to=%s id=%s state=%s "
			 "action=abort",
			 m->vm_name, m->peer_host, m->ids, smig_mst_names[m->p.state]);
		abort();
	}
	(void)qmpconn_send(q, "migrate_cancel", NULL, -1, NULL, NULL);
	/*
	 * Its owner record may have gone to the destination at the
	 * switch-over: the copy here runs again only once it is taken back
	 * (vm_fence.c), and only while this host may run it at all.
	 */
	if (m->handover_asked) {
		vm_claim_handed(m->vm, m->peer_host, m->ids);
		smig_warn("event=migration_source_fenced vm=%s to=%s reason=\"its owner record may be "
			  "%s's since the switch-over\" action=resume_once_taken_back",
			  m->vm_name, m->peer_host, m->peer_host);
		return;
	}
	if (vm_fence_resume_later(m->vm)) {
		smig_warn("event=migration_source_fenced vm=%s to=%s reason=\"its owner record is not "
			  "this host's under a sound lease\" action=resume_once_claimed",
			  m->vm_name, m->peer_host);
		return;
	}
	name = strdup(m->vm_name);
	vm_resume(m->vm, name ? on_source_resumed : NULL, name);
}

static void src_stats(struct mig *m, const json_t *ret)
{
	const json_t *ram = json_object_get(ret, "ram");
	const json_t *v;

	uint64_t passes = m->passes;

	if ((v = json_object_get(ram, "dirty-sync-count")))
		m->passes = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ram, "total")))
		m->ram_total = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ram, "dirty-pages-rate")))
		m->dirty_rate = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ram, "remaining"))) {
		m->ram_remaining = (uint64_t)json_integer_value(v);
		/*
		 * Progress: a pass that begins with less to send than any pass
		 * before it, by 1 % of the memory at least. (Within a pass what is
		 * left always falls; the dirty set a pass begins with is what a
		 * migration that converges shrinks.)
		 */
		if (m->passes != passes &&
		    (!m->progress_seen || m->ram_remaining + m->ram_total / 100 < m->progress_low)) {
			m->progress_seen = true;
			m->progress_low = m->ram_remaining;
			m->progress_at_ms = loop_now_ms();
		}
	}
	if ((v = json_object_get(ram, "page-size")))
		m->page_size = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ram, "mbps")))
		m->mbps = json_number_value(v);
	if ((v = json_object_get(ret, "downtime")))
		m->qemu_downtime_ms = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(ret, "cpu-throttle-percentage")))
		m->throttle_pct = (int)json_integer_value(v);
}

void mig_src_progress_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);
	const json_t *ram;
	double total, remaining, pct, eta;

	if (m == NULL || r == NULL || r->kind != SMIG_QMP_RETURN || !json_is_object(r->ret))
		return;
	src_stats(m, r->ret);
	ram = json_object_get(r->ret, "ram");
	if (ram == NULL || m->p.state != SMIG_MST_STREAMING)
		return;
	total = (double)json_integer_value(json_object_get(ram, "total"));
	remaining = (double)json_integer_value(json_object_get(ram, "remaining"));
	pct = total > 0 ? 100.0 * (total - remaining) / total : 0;
	eta = m->mbps > 0 ? remaining * 8 / (m->mbps * 1e6) : -1;
	mig_progress(m,
		     json_pack("{s:s,s:f,s:f,s:I,s:I,s:I,s:I,s:f}", "phase", "streaming", "percent",
			       pct, "mbps", m->mbps, "dirty_pages_rate", (json_int_t)m->dirty_rate,
			       "pass", (json_int_t)m->passes, "bytes",
			       (json_int_t)mig_bytes(m),
			       "remaining_bytes", (json_int_t)remaining, "eta_s", eta));
}

static int64_t qemu_downtime(const struct mig *m);
static void src_qmp_reply(void *arg, const struct smig_qmp_msg *r);
static void src_dst_full(struct mig *m, const char *why);

/* Whether QEMU throttles the guest from the start (qemu.auto_converge, unless its policy says no). */
static bool throttle_start(const struct mig *m)
{
	return m->auto_converge != 0 && m->d->cfg.auto_converge;
}

/*
 * Whether throttling the guest is an escalation step (not on from the
 * start): migration.auto_converge_step, or the VM's policy allowing it.
 */
static bool throttle_step(const struct mig *m)
{
	const struct smig_config *c = &m->d->cfg;

	return m->auto_converge != 0 && !c->auto_converge &&
	       (m->auto_converge == 1 || c->auto_converge_step);
}

/*
 * QEMU's CPU throttle (auto-converge): from the start (qemu.auto_converge),
 * QEMU's own ramp; held back for an escalation step, at most 1 % until
 * that step (QEMU 7.2 takes the capability only before the migration
 * starts, its parameters at any time); as the step, the last one before
 * giving up, all at once: the next time QEMU finds the guest dirtying
 * more than half what it sent in two passes running, the throttle goes
 * from 1 % to 99 % (its vCPUs run 10 ms a second until the switch-over).
 */
static json_t *throttle_params(const struct mig *m, bool step)
{
	if (step)
		return json_pack("{s:i,s:i,s:i}", "cpu-throttle-initial", 99,
				 "cpu-throttle-increment", 98, "max-cpu-throttle", 99);
	if (throttle_step(m))
		return json_pack("{s:i,s:i,s:i}", "cpu-throttle-initial", 1,
				 "cpu-throttle-increment", 1, "max-cpu-throttle", 1);
	return json_pack("{s:i,s:i,s:i}", "cpu-throttle-initial", 20, "cpu-throttle-increment", 10,
			 "max-cpu-throttle", 99);
}

/*
 * Whether m has run out of time, and how (into why): streaming longer than
 * its completion timeout (its policy's per GiB of memory, else
 * migration.completion_timeout_s), or no new low of the memory QEMU still
 * has to send for its policy's progress_timeout_s.
 */
static bool src_timed_out(struct mig *m, uint64_t now, char *why, size_t whylen)
{
	const struct smig_mig_policy *p = NULL;
	char from[96];

	if (m->progress_timeout_s && now - m->progress_at_ms > (uint64_t)m->progress_timeout_s * 1000) {
		snprintf(why, whylen, "made no progress for %d s (policy %s, progress_timeout_s)",
			 m->progress_timeout_s, m->policy);
		return true;
	}
	if (m->completion_s == 0 || now - m->timeout_from_ms <= (uint64_t)m->completion_s * 1000)
		return false;
	for (size_t i = 0; i < m->d->cfg.nmig_policies; i++)
		if (strcmp(m->d->cfg.mig_policies[i].name, m->policy) == 0)
			p = &m->d->cfg.mig_policies[i];
	if (p && p->completion_timeout_per_gib_s)
		snprintf(from, sizeof(from), "policy %s, %d s per GiB", m->policy,
			 p->completion_timeout_per_gib_s);
	else
		snprintf(from, sizeof(from), "migration.completion_timeout_s");
	snprintf(why, whylen, "did not converge in %d s (%s)", m->completion_s, from);
	return true;
}

/*
 * A migration still streaming after migration.escalate_after_s (and after
 * each such interval again) takes the next escalation step: QEMU's
 * downtime limit rises to the next of migration.downtime_steps_ms (a guest
 * that dirties memory faster than the link carries it converges once the
 * pause may be long enough), and after the last of them, unless QEMU
 * throttles from the start, the guest's vCPUs are throttled
 * (migration.auto_converge_step, or the VM's policy). Each step is logged,
 * counted and shown in the job. A migration out of time (src_timed_out)
 * fails, the VM running on here; under a policy with on_timeout
 * "escalate" it takes the next step at once instead, and its time starts
 * again, until there is no step left. false if the migration failed.
 */
static bool src_escalate(struct mig *m)
{
	const struct smig_config *c = &m->d->cfg;
	uint64_t now = loop_now_ms();
	uint64_t ms = m->t_prepared ? (loop_now_ns() - m->t_prepared) / 1000000 : 0;
	size_t step, nsteps = c->ndowntime_steps + (throttle_step(m) ? 1 : 0);
	int64_t limit;
	char why[160];

	if (m->p.state != SMIG_MST_STREAMING || m->qemu_done || m->t_prepared == 0)
		return true;
	if (m->timeout_from_ms == 0) {
		m->timeout_from_ms = m->progress_at_ms = now;
		return true;
	}
	step = (size_t)(ms / ((uint64_t)c->escalate_after_s * 1000));
	if (step > nsteps)
		step = nsteps;
	if (src_timed_out(m, now, why, sizeof(why))) {
		char thr[48] = "";

		if (m->escalate_on_timeout && m->esc_step < nsteps) {
			step = m->esc_step + 1;
			/* a step that would not raise the limit is no step: on to one that does */
			while (step <= c->ndowntime_steps && step < nsteps &&
			       c->downtime_steps_ms[step - 1] <= qemu_downtime(m))
				step++;
			m->timeout_from_ms = m->progress_at_ms = now;
			m->progress_seen = false;
			smig_warn("event=migration_timeout vm=%s to=%s reason=\"%s\" action=escalate",
				  m->vm_name, m->peer_host, why);
		} else {
			if (m->throttle_pct > 0)
				snprintf(thr, sizeof(thr), ", its vCPUs throttled %d %%",
					 m->throttle_pct);
			mig_src_fail(m, SMIG_ETIMEDOUT,
				     "%s; downtime limit %lld ms after %zu steps, %llu MiB still to "
				     "send, the guest dirtying %llu pages/s%s: %s runs on here",
				     why, (long long)qemu_downtime(m), m->esc_step,
				     (unsigned long long)(m->ram_remaining >> 20),
				     (unsigned long long)m->dirty_rate, thr, m->vm_name);
			return false;
		}
	}
	if (step <= m->esc_step)
		return true;
	m->esc_step = step;
	if (step > c->ndowntime_steps) {
		/* the last step: throttle the guest until its writes fit the link */
		m->esc_throttle = true;
		(void)qmpconn_send(vm_qmp(m->vm), "migrate-set-parameters", throttle_params(m, true),
				   -1, src_qmp_reply, mig_cb_new(m));
		m->d->stats.escalations++;
		smig_warn("event=migration_escalated vm=%s to=%s step=%zu action=auto_converge "
			  "after_ms=%llu dirty_pages_per_s=%llu",
			  m->vm_name, m->peer_host, step, (unsigned long long)ms,
			  (unsigned long long)m->dirty_rate);
		mig_progress(m, json_pack("{s:s,s:I,s:b,s:I}", "phase", "escalation", "step",
					  (json_int_t)step, "auto_converge", 1, "after_ms",
					  (json_int_t)ms));
		return true;
	}
	limit = c->downtime_steps_ms[step - 1];
	if (limit <= qemu_downtime(m))
		return true; /* asked for more already */
	m->esc_downtime_ms = limit;
	(void)qmpconn_send(vm_qmp(m->vm), "migrate-set-parameters",
			   json_pack("{s:I}", "downtime-limit", (json_int_t)limit), -1,
			   src_qmp_reply, mig_cb_new(m));
	m->d->stats.escalations++;
	smig_warn("event=migration_escalated vm=%s to=%s step=%zu downtime_limit_ms=%lld "
		  "after_ms=%llu dirty_pages_per_s=%llu",
		  m->vm_name, m->peer_host, step, (long long)limit, (unsigned long long)ms,
		  (unsigned long long)m->dirty_rate);
	mig_progress(m, json_pack("{s:s,s:I,s:I,s:I}", "phase", "escalation", "step",
				  (json_int_t)step, "downtime_limit_ms", (json_int_t)limit,
				  "after_ms", (json_int_t)ms));
	return true;
}

static void src_tick(void *arg)
{
	struct mig *m = arg;
	uint64_t now;

	m->timer = NULL;
	(void)mig_chans_moved(m);
	now = loop_now_ms();
	if (m->p.state == SMIG_MST_SETTLING) {
		if (now >= m->settle_by_ms)
			mig_src_settle_lost(m, "no SETTLED in time");
		else
			(void)loop_timer_add(m->d->loop, MIG_PROGRESS_MS, src_tick, m, &m->timer);
		return;
	}
	/*
	 * A source whose QEMU died after its stream waits for READY as long as
	 * the connection lives: giving up would lose the only copy there is.
	 */
	if (now - m->last_activity_ms > (uint64_t)m->d->cfg.stall_timeout_ms &&
	    !(m->src_gone && m->p.state == SMIG_MST_COMMIT_WAIT)) {
		mig_src_fail(m, SMIG_ETIMEDOUT, "nothing moved for %d ms while %s",
			 m->d->cfg.stall_timeout_ms, smig_mst_names[m->p.state]);
		return;
	}
	if (m->vm && vm_qmp(m->vm)) {
		if (!src_escalate(m))
			return;
		(void)qmpconn_send(vm_qmp(m->vm), "query-migrate", NULL, -1, mig_src_progress_reply,
				   mig_cb_new(m));
	}
	(void)loop_timer_add(m->d->loop, MIG_PROGRESS_MS, src_tick, m, &m->timer);
}

void mig_src_commit_req(struct mig *m)
{
	struct smig_mig_commit_req cr = { .id = m->p.id, .bytes = m->p.bytes };

	if (m->p.state != SMIG_MST_STREAMING || !m->qemu_done || !m->eof)
		return;
	mig_set_state(m, SMIG_MST_COMMIT_WAIT);
	(void)smig_msg_put_mig_commit_req(peer_tx(m->peer), &cr);
	peer_send_now(m->peer); /* the VM is paused from here on */
	smig_info("event=migration_commit_request vm=%s to=%s bytes=%llu", m->vm_name,
		  m->peer_host, (unsigned long long)m->p.bytes);
	mig_progress(m, json_pack("{s:s,s:f}", "phase", "switch-over", "percent", 100.0));
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
			mig_src_fail(m, SMIG_ENOMEM, "send buffer exhausted");
			return;
		}
		r = recv(m->fd, dst, MIG_CHUNK, MSG_DONTWAIT);
		if (r > 0) {
			smig_buf_commit(tx, (size_t)r);
			(void)smig_frame_end(tx, mark);
			m->p.bytes += (uint64_t)r;
			m->last_activity_ms = loop_now_ms();
			continue;
		}
		smig_frame_cancel(tx, mark); /* no data after all: drop the empty frame */
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r < 0) {
			mig_src_fail(m, SMIG_EIO, "reading QEMU's stream: %s", strerror(errno));
			return;
		}
		m->eof = true; /* QEMU closed its end: the stream is complete or dead */
		mig_close_fd(m);
		mig_src_commit_req(m);
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
	if (!m->p.source || !m->reading_paused || m->fd < 0)
		return;
	m->reading_paused = false;
	(void)loop_watch_mod(m->d->loop, m->w, EPOLLIN);
}

static void src_qmp_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);

	/* no answer at all: QMP went with QEMU; its exit ends the migration, truthfully */
	if (m == NULL || r == NULL || r->kind == SMIG_QMP_RETURN)
		return;
	mig_src_fail(m, SMIG_EIO, "QEMU refused the migration: %s", r->error_desc);
}

/*
 * QEMU's own downtime limit: the whole budget. Giving QEMU half (to leave
 * the other half for the relay's tail and the commit round trip) cut the
 * busy guest's downtime by half, but each extra pass gave QEMU's TCG dirty
 * tracking defect another chance (qemu_argv.c; docs/benchmarks.md). With
 * that worked around the half budget is worth a new measurement.
 */
static int64_t qemu_downtime(const struct mig *m)
{
	if (m->esc_downtime_ms)
		return m->esc_downtime_ms;
	return m->opts.downtime_ms ? m->opts.downtime_ms : MIG_DOWNTIME_MS;
}

/*
 * query-kvm: which accelerator runs the VM, named in the result and the
 * log: TCG is software emulation, and QEMU before 9.0 needs smig's
 * work-around for its TCG dirty tracking (qemu_argv.c).
 */
static void src_kvm_reply(void *arg, const struct smig_qmp_msg *r)
{
	struct mig *m = mig_cb_take(arg);

	if (m == NULL || r == NULL || r->kind != SMIG_QMP_RETURN)
		return;
	m->accel = json_is_true(json_object_get(r->ret, "enabled")) ? "kvm" : "tcg";
	if (m->accel[0] == 't')
		smig_info("event=migration_under_tcg vm=%s to=%s", m->vm_name, m->peer_host);
}

/* QEMU's main stream connected to the channels' socket: relay it as with one stream. */
static bool src_chan_main(struct mig *m, int fd)
{
	if (m->fd >= 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0 ||
	    loop_watch_add(m->d->loop, fd, EPOLLIN, src_fd_io, m, &m->w) < 0) {
		close(fd);
		mig_src_fail(m, SMIG_EIO, "cannot take QEMU's main stream");
		return false;
	}
	m->fd = fd;
	return true;
}

static void src_chan_fail_later(void *arg)
{
	struct mig *m = arg;

	m->chan_timer = NULL;
	if (!m->qemu_done && m->p.state == SMIG_MST_STREAMING)
		mig_src_fail(m, SMIG_EIO, "%s", m->why);
}

/*
 * A channel failed: before QEMU completed, so does the migration (the VM
 * runs on here). A channel the destination closed is most often its
 * abort on the way, which says why: it gets a moment to arrive.
 */
static void src_chan_failed(struct mig *m, const char *why, bool attacked)
{
	if (m->qemu_done || m->p.state != SMIG_MST_STREAMING) {
		smig_debug("event=channel_after_completion vm=%s why=\"%s\"", m->vm_name, why);
		return;
	}
	if (attacked || m->peer == NULL) {
		mig_src_fail(m, attacked ? SMIG_ETLS : SMIG_EIO, "%s", why);
		return;
	}
	if (m->chan_timer)
		return;
	snprintf(m->why, sizeof(m->why), "%s", why);
	(void)loop_timer_add(m->d->loop, MIG_CHAN_GRACE_MS, src_chan_fail_later, m,
			     &m->chan_timer);
}

static const struct mig_chan_ops src_chan_ops = { .main = src_chan_main,
						  .failed = src_chan_failed };

/*
 * Where QEMU's stream goes (its "migrate" URI): one stream, the end of a
 * socketpair it is handed (fd:NAME); with channels, the socket they and
 * the main stream connect to (mig_chan.c).
 */
static int src_stream_uri(struct mig *m, struct qmpconn *q, char *uri, size_t urilen)
{
	char fdname[40], err[256];
	int sv[2], rc;

	if (m->nchan) {
		rc = mig_chans_src(m, m->nchan, &src_chan_ops, vm_qemu_pid(m->vm), uri, urilen,
				   err, sizeof(err));
		if (rc < 0)
			smig_warn("event=channels_failed vm=%s reason=\"%s\"", m->vm_name, err);
		return rc;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return SMIG_EIO;
	snprintf(fdname, sizeof(fdname), "smig-%llu", (unsigned long long)m->serial);
	m->fd = sv[0];
	rc = loop_watch_add(m->d->loop, sv[0], EPOLLIN, src_fd_io, m, &m->w);
	if (rc == 0)
		rc = qmpconn_send(q, "getfd", json_pack("{s:s}", "fdname", fdname), sv[1],
				  src_qmp_reply, mig_cb_new(m));
	close(sv[1]); /* QEMU holds its own copy now */
	snprintf(uri, urilen, "fd:%s", fdname);
	return rc;
}

/* PREPARED: the destination's QEMU waits for the stream. Start QEMU's side. */
static void src_stream(struct mig *m)
{
	struct qmpconn *q = vm_qmp(m->vm);
	char uri[160];
	int rc;

	m->t_prepared = loop_now_ns();
	if (q == NULL) {
		mig_src_fail(m, SMIG_EIO, "cannot create the stream socket");
		return;
	}
	rc = qmpconn_send(q, "query-kvm", NULL, -1, src_kvm_reply, mig_cb_new(m));
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-set-capabilities",
				  json_pack("{s:[{s:s,s:b},{s:s,s:b},{s:s,s:b}]}", "capabilities",
					    "capability", "events", "state", 1, "capability",
					    "auto-converge", "state",
					    throttle_start(m) || throttle_step(m),
					    "capability", "multifd", "state", m->nchan > 0),
				  -1, src_qmp_reply, mig_cb_new(m));
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-set-parameters",
				  json_pack("{s:I,s:I}", "downtime-limit", (json_int_t)qemu_downtime(m),
					    "max-bandwidth",
					    (json_int_t)(m->opts.max_bandwidth
								 ? (json_int_t)m->opts.max_bandwidth << 20
								 : (json_int_t)1 << 40)),
				  -1, src_qmp_reply, mig_cb_new(m));
	if (rc == 0)
		rc = qmpconn_send(q, "migrate-set-parameters", throttle_params(m, false), -1,
				  src_qmp_reply, mig_cb_new(m));
	if (rc == 0 && m->nchan)
		rc = qmpconn_send(q, "migrate-set-parameters",
				  json_pack("{s:I}", "multifd-channels", (json_int_t)m->nchan), -1,
				  src_qmp_reply, mig_cb_new(m));
	if (rc == 0)
		rc = src_stream_uri(m, q, uri, sizeof(uri));
	if (rc == 0)
		rc = qmpconn_send(q, "migrate", json_pack("{s:s}", "uri", uri), -1, src_qmp_reply,
				  mig_cb_new(m));
	if (rc < 0) {
		mig_src_fail(m, SMIG_EIO, "cannot start QEMU's migration");
		return;
	}
	mig_set_state(m, SMIG_MST_STREAMING);
	smig_info("event=migration_streaming vm=%s to=%s setup_ms=%.1f", m->vm_name, m->peer_host,
		  mig_ms_between(m->t_start, m->t_prepared));
}

/* COMMITTED: the VM runs on the destination. Ours goes; wait for SETTLED. */
static void src_committed(struct mig *m)
{
	m->t_end = loop_now_ns();
	m->outcome = STATS_COMPLETED; /* the VM is the destination's now */
	mig_set_state(m, SMIG_MST_SETTLING);
	smig_info("event=migration_committed vm=%s to=%s total_ms=%.1f downtime_ms=%.1f", m->vm_name,
		  m->peer_host, mig_ms_between(m->t_start, m->t_end),
		  m->t_stop ? mig_ms_between(m->t_stop, m->t_end) : 0.0);
	vm_retire(m->vm); /* quit QEMU, wipe the vTPM state, forget the VM */
	m->vm = NULL;
	mig_src_fleet_done(m); /* its place in the fleet's queue is free, as the one here is */
	m->settle_by_ms = loop_now_ms() + (uint64_t)m->d->cfg.guest_watch_ms +
			  (uint64_t)m->d->cfg.stall_timeout_ms;
	mig_progress(m,
		     json_pack("{s:s,s:f,s:i}", "phase", "watching-guest", "percent", 100.0,
			       "watch_ms", m->d->cfg.guest_watch_ms));
}

/*
 * The end of a committed migration. guest is "alive", "crashed",
 * "unresponsive" or "unknown" (no SETTLED: the connection went, or it came
 * too late).
 */
void mig_src_finish(struct mig *m, const char *guest, const char *detail)
{
	static const char *const agent_names[] = { "none", "pending", "answered", "silent",
						   "expected" };
	bool crashed = strcmp(guest, "crashed") == 0;
	bool unresponsive = strcmp(guest, "unresponsive") == 0;
	json_t *result;

	mig_set_state(m, SMIG_MST_DONE);
	result = json_pack("{s:s,s:s,s:s,s:s,s:f,s:f,s:I,s:I,s:f,s:f,s:I,s:I,s:f,s:s,s:s,s:s}",
			   "status",
			   "completed", "vm", m->vm_name, "from", m->d->cfg.host, "to",
			   m->peer_host, "total_ms", mig_ms_between(m->t_start, m->t_end),
			   "downtime_ms", m->t_stop ? mig_ms_between(m->t_stop, m->t_end) : 0.0,
			   "qemu_downtime_ms", (json_int_t)m->qemu_downtime_ms,
			   "qemu_downtime_limit_ms", (json_int_t)qemu_downtime(m), "setup_ms",
			   mig_ms_between(m->t_start, m->t_prepared), "handshake_ms",
			   mig_ms_between(m->t_start, m->t_prepare), "bytes",
			   (json_int_t)mig_bytes(m),
			   "passes", (json_int_t)m->passes, "mbps",
			   mig_ms_between(m->t_prepared, m->t_end) > 0
				   ? (double)mig_bytes(m) * 8 / 1e3 /
					     mig_ms_between(m->t_prepared, m->t_end)
				   : 0.0,
			   "cipher", m->cipher, "peer_trust", m->trust, "accel",
			   m->accel ? m->accel : "unknown");
	if (result) {
		(void)json_object_set_new(result, "id", json_string(m->ids));
		(void)json_object_set_new(result, "guest", json_string(guest));
		(void)json_object_set_new(result, "channels", mig_chans_json(m));
		(void)json_object_set_new(result, "guest_detail", json_string(detail));
		(void)json_object_set_new(result, "guest_agent_before",
					  json_string(agent_names[m->agent]));
		(void)json_object_set_new(result, "escalation_steps",
					  json_integer((json_int_t)m->esc_step));
		(void)json_object_set_new(result, "auto_converge_step", json_boolean(m->esc_throttle));
		(void)json_object_set_new(result, "cpu_throttle_percent",
					  json_integer(m->throttle_pct));
		if (crashed || unresponsive)
			(void)json_object_set_new(result, "status", json_string("failed"));
	}
	if (crashed || unresponsive) {
		const char *what = crashed ? "crashed" : "unresponsive";

		m->outcome = STATS_FAILED;
		m->ended_by_peer = true; /* the destination saw its guest fail */
		snprintf(m->reason, sizeof(m->reason), "guest %s after switch-over: %s", what, detail);
		smig_err("event=migration_failed vm=%s to=%s reason=\"guest %s after switch-over: "
			 "%s\" action=none_source_copy_retired",
			 m->vm_name, m->peer_host, what, detail);
		mig_reply_err(m, crashed ? "guest_crashed" : "guest_unresponsive",
			      "%s to %s: failed (guest %s after switch-over): %s; the VM is on "
			      "%s, %s; its copy here was retired at commit, since the guest "
			      "had run there. Read its console log on %s (smig vm console), %s",
			      m->vm_name, m->peer_host, what, detail, m->peer_host,
			      crashed ? "crashed (QEMU holds it paused)"
				      : "running, but its guest may be hung",
			      m->peer_host,
			      crashed ? "then stop and start it there"
				      : "ping it (smig vm ping); if it stays silent, stop and "
					"start it there");
		json_decref(result);
	} else {
		smig_info("event=migration_completed vm=%s to=%s total_ms=%.1f downtime_ms=%.1f "
			  "bytes=%llu guest=%s",
			  m->vm_name, m->peer_host, mig_ms_between(m->t_start, m->t_end),
			  m->t_stop ? mig_ms_between(m->t_stop, m->t_end) : 0.0,
			  (unsigned long long)m->p.bytes, guest);
		mig_reply_ok(m, result);
	}
	mig_free(m);
}

void mig_src_settle_lost(struct mig *m, const char *why)
{
	char detail[SMIG_REASON_MAX + 1];

	snprintf(detail, sizeof(detail), "%s did not say how the guest fared after resume (%s)",
		 m->peer_host, why);
	mig_src_finish(m, "unknown", detail);
}

/*
 * PALM: a migration must never weaken a VM's protection. The destination's
 * READY says what it enforces for the VM; unless that covers everything the
 * spec asks, COMMIT is not sent and the VM resumes here.
 */
static bool src_protection_kept(struct mig *m, uint32_t offered)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ SMIG_PROT_NIC_FILTER, "its NIC filters" },
		{ SMIG_PROT_SANDBOX, "QEMU's confinement" },
		{ SMIG_PROT_VTPM, "its vTPM" },
		{ SMIG_PROT_MIN_TRUST, "its trust requirement (by its own self-check)" },
	};
	uint32_t missing = vm_spec_protections(vm_spec(m->vm)) & ~offered;
	char what[128] = "";

	if (missing == 0)
		return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (missing & names[i].bit)
			snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s",
				 what[0] ? ", " : "", names[i].name);
	sec_event(m->d, SMIG_SEC_POLICY_DENIAL, "", m->peer_host,
		  "%s would run %s without %s", m->peer_host, m->vm_name, what);
	mig_src_fail(m, SMIG_EDENIED,
		     "%s does not enforce %s for %s (PALM: a migration never weakens a VM's "
		     "protection); not committing",
		     m->peer_host, what, m->vm_name);
	return false;
}

/*
 * What a destination's ABORT code means here: a policy denial, no room, or
 * a resource it does not have keep their meaning (and the CLI's exit
 * code); anything else is a failed migration.
 */
static int abort_code(uint16_t code)
{
	switch (-(int)code) {
	case SMIG_EDENIED:
	case SMIG_ECAPACITY:
	case SMIG_ENOENT:
		return -(int)code;
	default:
		return SMIG_EPROTO;
	}
}

/* COMMIT: from now on the copy here waits for the destination's word. */
static void src_commit(struct mig *m)
{
	mig_set_state(m, SMIG_MST_COMMITTING);
	m->t_commit = loop_now_ns();
	mig_send_id(m, SMIG_MSG_MIG_COMMIT);
	smig_info("event=migration_commit_sent vm=%s to=%s%s", m->vm_name, m->peer_host,
		  m->src_gone ? " source_qemu=gone" : "");
}

static void src_handed(struct smigd *d, const char *name, const struct store_owner *r);

/* A source whose QEMU is gone asks for the handover again (the copy there is the only one). */
static void src_handover_again(void *arg)
{
	struct mig *m = arg;

	m->handover_t = NULL;
	m->last_activity_ms = loop_now_ms();
	if (store_handover(m->d, m->vm_name, m->peer_host, m->ids, src_handed) < 0)
		mig_src_fail(m, SMIG_EIO, "cannot ask the fleet store to hand %s to %s", m->vm_name,
			     m->peer_host);
}

/*
 * The fleet store's answer to the handover: COMMIT goes only once the
 * record names the destination, under its lease. Anything else fails the
 * migration before COMMIT; the copy here resumes once it has its record
 * back (mig_src_resume), or stays paused while that is unknown.
 */
static void src_handed(struct smigd *d, const char *name, const struct store_owner *r)
{
	struct vm *vm = vm_find(d, name);
	struct mig *m = vm ? vm_mig(vm) : NULL;

	if (m == NULL || !m->p.source || m->p.state != SMIG_MST_COMMIT_WAIT ||
	    !m->handover_asked || strcmp(m->ids, r->mig) != 0) {
		/* the migration ended meanwhile: its copy here takes the record back first */
		smig_info("event=migration_handover_late vm=%s id=%s handed=%s", name, r->mig,
			  r->ok ? "yes" : r->unknown ? "unknown" : "no");
		return;
	}
	m->last_activity_ms = loop_now_ms();
	if (r->ok) {
		vm_claim_handed(m->vm, m->peer_host, m->ids);
		smig_info("event=migration_handover vm=%s to=%s lease=%" PRId64 " ms=%.1f", m->vm_name,
			  m->peer_host, r->lease, mig_ms_between(m->t_handover, loop_now_ns()));
		src_commit(m);
		return;
	}
	if (m->src_gone) {
		/* the destination holds the only copy: ask again rather than give it up */
		smig_warn("event=migration_handover_retry vm=%s to=%s reason=\"%s\" "
			  "source_qemu=gone",
			  m->vm_name, m->peer_host, r->error[0] ? r->error : "no answer");
		if (loop_timer_add(d->loop, HANDOVER_RETRY_MS, src_handover_again, m,
				   &m->handover_t) < 0)
			mig_src_fail(m, SMIG_ENOMEM, "cannot ask the fleet store again");
		return;
	}
	if (r->unknown)
		mig_src_fail(m, SMIG_EUNREACH,
			     "the fleet store did not say whether %s's owner record went to %s (%s); "
			     "not committing, and the copy here stays paused until its record is back",
			     m->vm_name, m->peer_host, r->error);
	else
		mig_src_fail(m, SMIG_EUNREACH,
			     "the fleet store did not hand %s's owner record to %s: %s; not committing",
			     m->vm_name, m->peer_host, r->error[0] ? r->error : "no answer");
}

/*
 * READY: the destination holds it all. The commit is marked here first (a
 * restarted smigd asks the destination how it ended); with a fleet store
 * the VM's owner record then goes to the destination, and only then COMMIT.
 */
static void src_ready(struct mig *m, uint32_t offered)
{
	if (!m->src_gone && !src_protection_kept(m, offered))
		return;
	if (vm_commit_mark(m->vm, &m->p.id, m->peer_host) < 0) {
		mig_src_fail(m, SMIG_EIO, "cannot record the commit in %s's directory", m->vm_name);
		return;
	}
	smig_debug("event=migration_commit_marked vm=%s to=%s", m->vm_name, m->peer_host);
	if (!store_active(m->d)) {
		src_commit(m);
		return;
	}
	m->handover_asked = true;
	m->t_handover = loop_now_ns();
	if (store_handover(m->d, m->vm_name, m->peer_host, m->ids, src_handed) < 0)
		mig_src_fail(m, SMIG_EIO, "cannot ask the fleet store to hand %s to %s", m->vm_name,
			     m->peer_host);
}

void mig_src_frame(struct mig *m, const struct smig_frame *f)
{
	struct smig_mig_in_msg in;
	const struct smig_host *h;

	switch (smig_migproto_rx(&m->p, f, &in)) {
	case SMIG_IN_ABORT:
		if (-(int)in.code == SMIG_EFULL && m->p.state == SMIG_MST_PREPARING) {
			src_dst_full(m, in.text);
			return;
		}
		m->ended_by_peer = true;
		/*
		 * After COMMIT a peer's ABORT is only a word: the copy there may be
		 * running. mig_src_fail stays paused and asks how it ended (QUERY);
		 * the destination's recorded outcome, which it never changes
		 * afterwards, decides whether the copy here resumes.
		 */
		mig_src_fail(m, abort_code(in.code), "%s refused%s: %s", m->peer_host,
			     m->p.state == SMIG_MST_COMMITTING ? " after COMMIT" : "", in.text);
		return;
	case SMIG_IN_SETTLED:
		mig_src_finish(m,
			       in.fate == SMIG_GUEST_CRASHED	  ? "crashed"
			       : in.fate == SMIG_GUEST_UNRESPONSIVE ? "unresponsive"
								    : "alive",
			       in.text);
		return;
	case SMIG_IN_PREPARED:
		mig_id_set(m, &m->p.id); /* the destination's choice */
		smig_info("event=migration_prepared vm=%s to=%s id=%s", m->vm_name, m->peer_host,
			  m->ids);
		src_stream(m);
		return;
	case SMIG_IN_READY:
		src_ready(m, in.offered);
		return;
	case SMIG_IN_COMMITTED:
		src_committed(m);
		return;
	case SMIG_IN_BAD:
		/* after COMMIT this resolves by asking: a garbled ABORT proves nothing */
		mig_src_fail(m, SMIG_EPROTO, "%s from %s", in.text, m->peer_host);
		return;
	case SMIG_IN_WRONG_ID:
		/* after COMMIT this resolves by asking, as any other bad word does */
		h = smig_hosts_by_name(smigd_hosts(m->d), m->peer_host);
		sec_event(m->d, SMIG_SEC_PROTOCOL_VIOLATION, h ? h->addr : "", m->peer_host,
			  "%s sent %s during the migration of %s (id %s)", m->peer_host, in.text,
			  m->vm_name, m->ids);
		mig_src_fail(m, SMIG_EPROTO, "%s from %s", in.text, m->peer_host);
		return;
	default:
		h = smig_hosts_by_name(smigd_hosts(m->d), m->peer_host);
		sec_event(m->d, SMIG_SEC_PROTOCOL_VIOLATION, h ? h->addr : "", m->peer_host,
			  "%s sent %s while the migration of %s was %s", m->peer_host,
			  smig_frame_type_name(f->type), m->vm_name, smig_mst_names[m->p.state]);
		mig_src_fail(m, SMIG_EPROTO, "unexpected %s from %s while %s",
			     smig_frame_type_name(f->type), m->peer_host, smig_mst_names[m->p.state]);
		return;
	}
}

/*
 * The security-preservation check: the target, as it attested just now in
 * this session, must be trustworthy, meet the VM's min_trust and have every
 * capability the VM requires. A refusal is audited with its rule.
 */
static bool target_fits(struct mig *m)
{
	const struct smig_verdict *v = peer_verdict(m->peer);
	const struct host_state *hs = smigd_host_state(m->d, m->peer_host);
	char why[512];
	const char *rule = smig_attest_fits(m->peer_host, v, hs ? &hs->evidence : NULL,
					    vm_spec(m->vm), why, sizeof(why));

	if (rule == NULL) {
		snprintf(m->trust, sizeof(m->trust), "%s", smig_verdict_name(v->kind));
		return true;
	}
	audit_write(m->d, m->ref.audit.on ? m->ref.audit.actor : "smigd", "vm.migrate",
		    m->ref.audit.target, "deny", rule, "refused", why);
	mig_src_fail(m, SMIG_EAUTH, "%s (rule %s)", why, rule);
	return false;
}

/*
 * The source's guest agent ping, sent when the migration starts: an answer
 * here is what the destination's pings after resume are held to.
 */
static void src_agent_word(void *arg, bool answered, const char *why)
{
	struct mig *m = arg;

	m->agent_ping = NULL;
	m->agent = answered ? MA_ANSWERED : MA_SILENT;
	if (answered)
		smig_info("event=guest_agent_ping vm=%s answered=yes", m->vm_name);
	else
		smig_warn("event=guest_agent_ping vm=%s answered=no reason=\"%s\" "
			  "action=migrate_unwatched_by_agent",
			  m->vm_name, why);
	if (m->peer_waits_agent) {
		m->peer_waits_agent = false;
		mig_peer_ready(m);
	}
}

/*
 * The streams of this migration: --channels, else migration.channels,
 * else by the cores: half of them, at most 4, and one stream below four
 * cores (each channel wants a core for QEMU's send thread and one for its
 * relay, beside the guest's vCPUs). 0: the main stream alone.
 */
static size_t src_channels(const struct mig *m)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	long n = m->opts.channels ? m->opts.channels : m->d->cfg.mig_channels;

	if (n == 0)
		n = cores >= 4 ? (cores / 2 < 4 ? cores / 2 : 4) : 1;
	return n > 1 ? (size_t)n : 0;
}

void mig_peer_ready(struct mig *m)
{
	struct smig_mig_prepare mp = { .has_key = 0 };
	uint8_t key[SMIG_MIG_KEY_LEN];
	char *spec;
	int rc;

	if (m->p.state == SMIG_MST_RESOLVING) {
		mig_resolve_ask(m);
		return;
	}
	if (m->agent == MA_PENDING) {
		m->peer_waits_agent = true; /* PREPARE says whether the agent answered */
		return;
	}
	mp.agent_answered = m->agent == MA_ANSWERED;
	mp.evacuation = m->opts.evacuation;
	m->nchan = src_channels(m);
	mp.channels = (uint8_t)m->nchan;
	snprintf(m->cipher, sizeof(m->cipher), "%s", peer_cipher(m->peer));
	if (!target_fits(m))
		return;
	if (smig_vmspec_dump(vm_spec(m->vm), &spec) < 0) {
		mig_src_fail(m, SMIG_ENOMEM, "cannot serialise the spec");
		return;
	}
	mp.spec = spec;
	mp.spec_len = strlen(spec);
	if (vm_spec(m->vm)->vtpm) {
		if (vm_get_tpm_key(m->vm, key, sizeof(key)) < 0) {
			free(spec);
			mig_src_fail(m, SMIG_EIO, "the vTPM state key is missing");
			return;
		}
		mp.has_key = 1;
		memcpy(mp.key, key, sizeof(key));
		OPENSSL_cleanse(key, sizeof(key));
	}
	if (vm_spec(m->vm)->firmware.kind == SMIG_FW_UEFI) {
		struct vm_fw_build b;
		char err[512];

		if (vm_fw_build_get(m->vm, &b, err, sizeof(err)) < 0) {
			OPENSSL_cleanse(mp.key, sizeof(mp.key));
			free(spec);
			mig_src_fail(m, SMIG_EIO, "the VM's firmware build is unknown: %s", err);
			return;
		}
		mp.has_fw = 1;
		memcpy(mp.fw_sha256, b.sha256, sizeof(mp.fw_sha256));
		mp.fw_size = b.size;
	}
	/* synced before PREPARE: after a power cut, autostart must not run a VM that moved */
	if (vm_outgoing_mark(m->vm, m->peer_host) < 0) {
		OPENSSL_cleanse(mp.key, sizeof(mp.key));
		free(spec);
		mig_src_fail(m, SMIG_EIO, "cannot record the migration in the VM's records");
		return;
	}
	rc = smig_msg_put_mig_prepare(peer_tx(m->peer), &mp);
	OPENSSL_cleanse(mp.key, sizeof(mp.key));
	free(spec);
	if (rc < 0) {
		mig_src_fail(m, rc, "cannot encode PREPARE");
		return;
	}
	mig_set_state(m, SMIG_MST_PREPARING);
	m->t_prepare = loop_now_ns();
	mig_progress(m, json_pack("{s:s,s:s}", "phase", "preparing", "cipher", m->cipher));
	peer_kick(m->peer);
}

/*
 * The settings of m from its VM's migration policy (the most specific of
 * migration.policies that matches its labels): bandwidth and downtime
 * unless smig migrate set them, the completion and progress timeouts, and
 * whether the guest may be throttled.
 */
static void src_policy(struct mig *m, const struct smig_vmspec *spec)
{
	const struct smig_config *c = &m->d->cfg;
	const struct smig_mig_policy *p = smig_mig_policy_for(c, spec->labels, spec->nlabels);
	uint64_t gib = ((uint64_t)spec->memory_mib + 1023) / 1024;

	m->completion_s = c->completion_timeout_s;
	m->auto_converge = -1;
	if (p == NULL)
		return;
	snprintf(m->policy, sizeof(m->policy), "%s", p->name);
	if (m->opts.max_bandwidth == 0)
		m->opts.max_bandwidth = p->max_bandwidth;
	if (m->opts.downtime_ms == 0)
		m->opts.downtime_ms = p->downtime_ms;
	if (p->completion_timeout_per_gib_s) {
		uint64_t s = (uint64_t)p->completion_timeout_per_gib_s * gib;

		m->completion_s = s > MIG_COMPLETION_MAX_S ? MIG_COMPLETION_MAX_S : (int)s;
	}
	m->progress_timeout_s = p->progress_timeout_s;
	m->escalate_on_timeout = p->escalate_on_timeout;
	m->auto_converge = p->auto_converge;
}

/*
 * Outbound migrations that hold a place under migration.parallel_outbound:
 * begun and not yet committed (queued ones wait; a committed one only
 * watches the destination's guest or asks how its commit ended).
 */
static size_t src_running(const struct smigd *d)
{
	size_t n = 0;

	for (const struct mig *m = d->migs->head; m; m = m->next)
		n += m->p.source && !m->queued && m->p.state < SMIG_MST_SETTLING;
	return n;
}

/* m's place in the queue, 1 first. */
static size_t src_queue_position(const struct mig *m)
{
	size_t n = 1;

	for (const struct mig *o = m->d->migs->head; o; o = o->next)
		n += o->p.source && o->queued && !o->fleet_wait && o->serial < m->serial;
	return n;
}

static void src_queue_tell(struct mig *m)
{
	if (m->full_since_ms || m->fleet_wait)
		return; /* waits for its destination, or the fleet's queue, which said so */
	mig_progress(m, json_pack("{s:s,s:I,s:i,s:s}", "phase", "queued", "position",
				  (json_int_t)src_queue_position(m), "parallel_outbound",
				  m->d->cfg.parallel_outbound, "policy", m->policy));
}

#define FLEET_ASK_MS 1000 /* a place in the fleet's queue is asked for again after this */

static void src_begin(struct mig *m);
static void src_fleet_ask(void *arg);

void mig_src_fleet_done(struct mig *m)
{
	if (!m->fleet_ticket)
		return;
	m->fleet_ticket = false;
	(void)store_ticket_drop(m->d, m->serial);
}

/* The fleet store's word on m's place in the fleet's queue. */
static void src_fleet_answer(struct smigd *d, void *arg, const struct store_ticket *t)
{
	struct mig *m = mig_cb_take(arg);
	size_t cap = (size_t)d->cfg.parallel_outbound;
	int fleet_cap = smig_policy_max_cluster_migrations(authz_policy(d));

	if (m == NULL || !m->fleet_wait)
		return;
	if (t->answered && (t->admitted || fleet_cap <= 0)) {
		m->fleet_wait = false;
		m->fleet_admitted = true;
		smig_info("event=migration_fleet_admitted vm=%s to=%s position=%d of=%d "
			  "max_cluster_migrations=%d waited_ms=%llu",
			  m->vm_name, m->peer_host, t->position, t->total, fleet_cap,
			  (unsigned long long)(loop_now_ms() - m->queued_at_ms));
		if (!m->opts.evacuation && cap && src_running(d) >= cap) {
			mig_dequeue_soon(d); /* its place here comes in turn */
			return;
		}
		src_begin(m);
		return;
	}
	if (t->answered)
		mig_progress(m, json_pack("{s:s,s:s,s:i,s:i,s:i,s:s}", "phase", "queued",
					  "waiting_for", "fleet", "position", t->position, "of",
					  t->total, "max_cluster_migrations", fleet_cap, "policy",
					  m->policy));
	else
		mig_progress(m, json_pack("{s:s,s:s,s:s,s:s}", "phase", "queued", "waiting_for",
					  "fleet", "reason", t->error, "policy", m->policy));
	if (loop_timer_add(d->loop, FLEET_ASK_MS, src_fleet_ask, m, &m->fleet_t) < 0)
		mig_src_fail(m, SMIG_ENOMEM, "cannot wait in the fleet's queue");
}

static void src_fleet_ask(void *arg)
{
	struct mig *m = arg;
	int cap = smig_policy_max_cluster_migrations(authz_policy(m->d));

	m->fleet_t = NULL;
	m->fleet_ticket = true;
	if (store_ticket(m->d, m->serial, m->vm_name, m->peer_host, m->opts.evacuation,
			 cap > 0 ? cap : 1, src_fleet_answer, mig_cb_new(m)) < 0 &&
	    loop_timer_add(m->d->loop, FLEET_ASK_MS, src_fleet_ask, m, &m->fleet_t) < 0)
		/* (out of memory: it waits, cancellable, until something asks again) */
		smig_err("event=migration_fleet_wait_failed vm=%s to=%s reason=\"out of memory\" "
			 "hint=\"smig migrate cancel %s\"",
			 m->vm_name, m->peer_host, m->vm_name);
}

/*
 * With policy limits.max_cluster_migrations and a fleet store, m begins
 * only once its ticket is among the first that many of the fleet's
 * (evacuations first, then the first come); meanwhile it waits, queued,
 * and holds no place under migration.parallel_outbound.
 */
static bool src_fleet_wait(struct mig *m)
{
	int cap = smig_policy_max_cluster_migrations(authz_policy(m->d));

	if (cap <= 0 || !store_active(m->d) || m->fleet_admitted)
		return false;
	if (m->fleet_wait)
		return true; /* asked already */
	m->fleet_wait = true;
	if (!m->queued) {
		m->queued = true;
		m->queued_at_ms = loop_now_ms();
	}
	smig_info("event=migration_queued_fleet vm=%s to=%s max_cluster_migrations=%d%s", m->vm_name,
		  m->peer_host, cap, m->opts.evacuation ? " evacuation=yes" : "");
	src_fleet_ask(m);
	mig_dequeue_soon(m->d); /* its place here is free for another meanwhile */
	return true;
}

/* m begins: the guest agent's word, the connection to the destination. */
static void src_begin(struct mig *m)
{
	struct smigd *d = m->d;
	char err[256];

	loop_timer_cancel(d->loop, m->timer); /* a wait for a full destination ends here */
	m->timer = NULL;
	if (m->queued && (vm_state(m->vm) != VM_RUNNING || vm_power_busy(m->vm))) {
		/* it waited; the VM no longer runs as it did: nothing to move, nothing to resume */
		smig_warn("event=migration_failed vm=%s to=%s state=queued reason=\"the VM is %s\" "
			  "action=none",
			  m->vm_name, m->peer_host, vm_state_name(vm_state(m->vm)));
		snprintf(m->reason, sizeof(m->reason), "the VM is %s now; it was queued",
			 vm_state_name(vm_state(m->vm)));
		m->queued_ms += loop_now_ms() - m->queued_at_ms;
		m->queued = false;
		mig_reply_err(m, "migration_failed",
			      "%s to %s: while it waited in the queue the VM became %s; it stays here",
			      m->vm_name, m->peer_host, vm_state_name(vm_state(m->vm)));
		mig_free(m);
		return;
	}
	if (src_fleet_wait(m))
		return;
	if (m->queued) {
		m->queued = false;
		m->queued_ms += loop_now_ms() - m->queued_at_ms;
		m->t_start = loop_now_ns();
		m->wall_start_ms = loop_wall_ms();
		m->last_activity_ms = loop_now_ms();
		smig_info("event=migration_dequeued vm=%s to=%s waited_ms=%llu", m->vm_name,
			  m->peer_host, (unsigned long long)m->queued_ms);
	}
	if (vm_spec(m->vm)->guest_agent) {
		m->agent = MA_PENDING;
		m->agent_ping = vm_agent_ping(m->vm, src_agent_word, m);
		if (m->agent_ping == NULL)
			m->agent = MA_SILENT;
	}
	m->peer = peer_connect_mig(d, m->peer_host, m, err, sizeof(err));
	if (m->peer == NULL) {
		mig_reply_err(m, "unreachable", "%s", err);
		mig_free(m);
		return;
	}
	mig_progress(m, json_pack("{s:s,s:s,s:s}", "phase", "connecting", "to", m->peer_host,
				  "policy", m->policy));
	(void)loop_timer_add(d->loop, MIG_PROGRESS_MS, src_tick, m, &m->timer);
}

/* A full destination's wait is over: ask again, or wait for a place here. */
static void src_retry(void *arg)
{
	struct mig *m = arg;
	size_t cap = (size_t)m->d->cfg.parallel_outbound;

	m->timer = NULL;
	if (cap && src_running(m->d) >= cap)
		return; /* queued, due: mig_src_dequeue begins it when a place is free */
	src_begin(m);
}

/*
 * The destination has as many incoming migrations as it takes (ABORT
 * "full", before anything started): m closes its session and waits in the
 * queue, and connects again in MIG_FULL_RETRY_MS, or earlier when one of
 * this host's migrations ends; after MIG_FULL_WAIT_S of that it fails.
 */
static void src_dst_full(struct mig *m, const char *why)
{
	uint64_t now = loop_now_ms();

	if (m->full_since_ms == 0)
		m->full_since_ms = now;
	if (now - m->full_since_ms > (uint64_t)MIG_FULL_WAIT_S * 1000) {
		mig_src_fail(m, SMIG_EFULL, "%s stayed full for %d s: %s", m->peer_host,
			     MIG_FULL_WAIT_S, why);
		return;
	}
	loop_timer_cancel(m->d->loop, m->timer);
	m->timer = NULL;
	agent_ping_cancel(m->agent_ping);
	m->agent_ping = NULL;
	peer_release(m->peer);
	m->peer = NULL;
	vm_outgoing_clear(m->vm); /* nothing left here, nothing arrived there */
	smig_migproto_init(&m->p, true, NULL);
	m->t_prepare = 0;
	m->queued = true;
	m->queued_at_ms = now;
	smig_info("event=migration_destination_full vm=%s to=%s reason=\"%s\" retry_ms=%d",
		  m->vm_name, m->peer_host, why, MIG_FULL_RETRY_MS);
	mig_progress(m, json_pack("{s:s,s:s,s:s,s:s}", "phase", "queued", "waiting_for",
				  m->peer_host, "reason", why, "policy", m->policy));
	mig_dequeue_soon(m->d); /* its place here is free for another meanwhile */
	if (loop_timer_add(m->d->loop, MIG_FULL_RETRY_MS, src_retry, m, &m->timer) < 0)
		mig_src_fail(m, SMIG_ENOMEM, "cannot wait for %s", m->peer_host);
}

void mig_src_dequeue(struct smigd *d)
{
	size_t cap = (size_t)d->cfg.parallel_outbound;
	struct mig *next;

	for (;;) {
		next = NULL;
		if (cap && src_running(d) >= cap)
			break;
		/* the first come of those due: a full destination's wait not yet over is not */
		for (struct mig *m = d->migs->head; m; m = m->next)
			if (m->p.source && m->queued && m->timer == NULL && !m->fleet_wait &&
			    (next == NULL || m->serial < next->serial))
				next = m;
		if (next == NULL)
			return;
		src_begin(next); /* may free it */
	}
	for (struct mig *m = d->migs->head; m; m = m->next)
		if (m->p.source && m->queued)
			src_queue_tell(m);
}

json_t *mig_explain(struct smigd *d, const char *name, const char *to, char *err, size_t errlen)
{
	struct vm *vm = vm_find(d, name);
	const struct smig_config *c = &d->cfg;
	const struct smig_vmspec *spec;
	struct mig *m;
	json_t *matched, *o;
	size_t running, queued = 0;

	if (vm == NULL) {
		snprintf(err, errlen, "no VM named %s on %s", name, c->host);
		return NULL;
	}
	if (to && smig_hosts_by_name(smigd_hosts(d), to) == NULL) {
		snprintf(err, errlen, "%s is not in the host table", to);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	spec = vm_spec(vm);
	m->d = d;
	src_policy(m, spec);
	matched = json_array();
	for (size_t i = 0; i < c->nmig_policies; i++)
		if (smig_labels_match(c->mig_policies[i].sel, c->mig_policies[i].nsel, spec->labels,
				      spec->nlabels))
			json_array_append_new(matched,
					      json_pack("{s:s,s:I}", "name", c->mig_policies[i].name,
							"labels", (json_int_t)c->mig_policies[i].nsel));
	running = src_running(d); /* what the cap counts: settling and resolving ones do not */
	for (const struct mig *x = d->migs->head; x; x = x->next)
		queued += x->p.source && x->queued;
	o = json_pack("{s:s,s:s?,s:s?,s:o,s:s,s:{s:i,s:i,s:i,s:i,s:s,s:s},s:{s:I,s:I,s:i}}", "vm",
		      name, "to", to, "policy", m->policy[0] ? m->policy : NULL, "matched", matched,
		      "why",
		      m->policy[0] ? "of the policies whose vm_labels all match the VM's labels, the "
				     "one with the most labels (the first of equals)"
				   : "no policy's vm_labels match the VM's labels: the host's "
				     "migration.* settings apply",
		      "settings", "max_bandwidth_mib", m->opts.max_bandwidth, "downtime_ms",
		      m->opts.downtime_ms ? m->opts.downtime_ms : MIG_DOWNTIME_MS,
		      "completion_timeout_s", m->completion_s, "progress_timeout_s",
		      m->progress_timeout_s, "on_timeout", m->escalate_on_timeout ? "escalate" : "abort",
		      "auto_converge",
		      throttle_start(m) ? "from the start"
		      : throttle_step(m) ? "as the last escalation step"
					 : "never",
		      "outbound", "running", (json_int_t)running, "queued", (json_int_t)queued,
		      "parallel_outbound", c->parallel_outbound);
	free(m);
	if (o == NULL)
		snprintf(err, errlen, "out of memory");
	return o;
}

/* Whether a migration of vm to host to may begin; the refusal goes to ref. */
static bool mig_start_ok(struct smigd *d, struct vm *vm, const char *name, const char *to,
			 struct ctl_ref *ref)
{
	if (vm == NULL) {
		ctl_reply_err(d, ref, "not_found", "no VM named %s on %s", name, d->cfg.host);
		return false;
	}
	if (vm_state(vm) != VM_RUNNING || vm_mig(vm)) {
		ctl_reply_err(d, ref, "error", "%s is %s%s; only a running VM migrates", name,
			      vm_state_name(vm_state(vm)), vm_mig(vm) ? " and migrating" : "");
		return false;
	}
	/* a guest shutting down or rebooting (QEMU may hold it at its power-off) stays here */
	if (vm_power_busy(vm)) {
		ctl_reply_err(d, ref, "error",
			      "%s is shutting down or rebooting; migrate it once that has ended "
			      "(smig vm show %s)",
			      name, name);
		return false;
	}
	if (strcmp(to, d->cfg.host) == 0 || smig_hosts_by_name(smigd_hosts(d), to) == NULL) {
		ctl_reply_err(d, ref, "not_found", "%s is %s", to,
			      strcmp(to, d->cfg.host) == 0 ? "this host"
							   : "not in the host table");
		return false;
	}
	return true;
}

void mig_start(struct smigd *d, const char *name, const char *to, const struct mig_opts *o,
	       struct ctl_ref *ref)
{
	struct vm *vm = vm_find(d, name);
	struct mig *m;
	size_t cap = (size_t)d->cfg.parallel_outbound;

	if (!mig_start_ok(d, vm, name, to, ref)) {
		if (o->held) /* refused before it began: the hold goes now */
			mig_hold_release(d, to, name);
		return;
	}
	m = mig_new(d, true);
	if (m == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		if (o->held)
			mig_hold_release(d, to, name);
		return;
	}
	m->vm = vm;
	m->opts = *o;
	m->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", name);
	snprintf(m->peer_host, sizeof(m->peer_host), "%s", to);
	vm_set_mig(vm, m);
	src_policy(m, vm_spec(vm));
	smig_info("event=migration_start vm=%s to=%s policy=%s", name, to,
		  m->policy[0] ? m->policy : "-");
	/* an evacuation has its own cap (attestation.evacuate_parallel) and never waits here */
	if (cap && !o->evacuation && src_running(d) > cap) { /* m counts until it is queued */
		m->queued = true;
		m->queued_at_ms = loop_now_ms();
		smig_info("event=migration_queued vm=%s to=%s position=%zu parallel_outbound=%zu",
			  name, to, src_queue_position(m), cap);
		src_queue_tell(m);
		return;
	}
	src_begin(m);
}

void mig_cancel(struct smigd *d, const char *job, struct ctl_ref *ref)
{
	struct mig *m = mig_job(d, job);
	json_t *res;

	if (m == NULL) {
		ctl_reply_err(d, ref, "not_found",
			      "%s is not migrating from here (neither a VM here nor the id of a "
			      "migration leaving this host; smig migrate list shows those that ended)",
			      job);
		return;
	}
	if (m->p.state >= SMIG_MST_COMMITTING) {
		ctl_reply_err(d, ref, "error", "%s is already committing", m->vm_name);
		return;
	}
	smig_info("event=migration_cancel_request vm=%s to=%s id=%s uid=%d", m->vm_name,
		  m->peer_host, m->ids, ref->has_cred ? (int)ref->cred.uid : -1);
	m->outcome = STATS_CANCELLED;
	res = json_pack("{s:s,s:s,s:s}", "vm", m->vm_name, "id", m->ids, "status", "cancelled");
	mig_src_fail(m, SMIG_EINVAL, "cancelled by the operator"); /* frees m */
	ctl_reply_ok(d, ref, res);
}


