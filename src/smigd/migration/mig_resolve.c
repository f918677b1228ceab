/*
 * mig_resolve.c - a source that sent COMMIT and heard neither COMMITTED nor
 * ABORT does not know where its VM runs: the destination may have resumed
 * it or discarded its copy. The copy here stays paused (commit.pending in
 * its directory says so, across restarts) while this asks the destination
 * how the migration ended, with MIG_QUERY on a fresh connection, again
 * every RESOLVE_RETRY_MS until it answers:
 *   COMMITTED            the VM runs there: the copy here is retired;
 *   NOT_HERE, DISCARDED  no copy there: the copy here resumes;
 *   PENDING              the resume there is under way: ask again.
 * The destination's answer is final: one it gave DISCARDED never resumes
 * afterwards (a late COMMIT finds no migration), so the VM runs in one
 * place. After a restart, a VM whose directory holds commit.pending is
 * resolved the same way (mig_resolve_adopted).
 */
#include "migration/mig_int.h"
#include "log.h"
#include "msg.h"
#include "vm/vm.h"

#include <stdio.h>
#include <string.h>

#define RESOLVE_RETRY_MS 2000
#define RESOLVE_PENDING_MS 500
#define RESOLVE_TICK_MS 250
/* A client that waits is told "unresolved so far" after this; the asking goes on. */
#define RESOLVE_REPLY_MS 30000

static const char *const outcome_names[] = { "not-here", "discarded", "committed", "pending" };

static void resolve_tick(void *arg)
{
	struct mig *m = arg;
	uint64_t now = loop_now_ms();
	char err[256];

	m->timer = NULL;
	/* who started it hears that it is unresolved; watchers wait for the outcome */
	if (ctl_ref_waits(&m->ref) && now >= m->settle_by_ms)
		ctl_reply_err(m->d, &m->ref, "migration_unresolved",
			      "%s: COMMIT went to %s but its answer did not come back (%s); the VM "
			      "stays paused here while smigd keeps asking %s how the migration "
			      "ended; smig vm show %s tells when it knows",
			      m->vm_name, m->peer_host, m->why, m->peer_host, m->vm_name);
	if (m->peer == NULL && now >= m->resolve_next_ms) {
		m->resolve_next_ms = now + RESOLVE_RETRY_MS;
		m->peer = peer_connect_mig(m->d, m->peer_host, m, err, sizeof(err));
		if (m->peer == NULL) {
			snprintf(m->why, sizeof(m->why), "%s", err);
			smig_debug("event=migration_resolve_retry vm=%s to=%s reason=\"%s\"",
				   m->vm_name, m->peer_host, err);
		}
	}
	(void)loop_timer_add(m->d->loop, RESOLVE_TICK_MS, resolve_tick, m, &m->timer);
}

static void resolve_start(struct mig *m)
{
	mig_set_state(m, SMIG_MST_RESOLVING);
	m->resolve_next_ms = loop_now_ms();
	m->settle_by_ms = loop_now_ms() + RESOLVE_REPLY_MS;
	vm_note_error(m->vm,
		      "COMMIT of migration %s went to %s and was not confirmed (%s): the "
		      "copy here stays paused while smigd asks %s how it ended",
		      m->ids, m->peer_host, m->why, m->peer_host);
	loop_timer_cancel(m->d->loop, m->timer);
	(void)loop_timer_add(m->d->loop, 0, resolve_tick, m, &m->timer);
}

void mig_resolve_begin(struct mig *m, const char *why)
{
	smig_err("event=migration_unresolved vm=%s to=%s id=%s reason=\"%s\" "
		 "action=ask_destination",
		 m->vm_name, m->peer_host, m->ids, why);
	snprintf(m->why, sizeof(m->why), "%s", why);
	if (m->peer)
		peer_release(m->peer);
	m->peer = NULL;
	mig_close_fd(m);
	resolve_start(m);
}

int mig_resolve_adopted(struct smigd *d, struct vm *vm, const struct smig_mig_id *id,
			const char *host, bool gone)
{
	struct mig *m = mig_new(d, true);

	if (m == NULL)
		return -1;
	mig_id_set(m, id);
	m->vm = vm;
	m->src_gone = gone;
	/* the commit is marked before the handover: the record may be the destination's */
	m->handover_asked = store_active(d);
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", vm_spec(vm)->name);
	snprintf(m->peer_host, sizeof(m->peer_host), "%s", host);
	snprintf(m->why, sizeof(m->why), "smigd restarted before the answer came");
	vm_set_mig(vm, m);
	smig_warn("event=migration_unresolved vm=%s to=%s id=%s reason=\"%s\" "
		  "action=ask_destination",
		  m->vm_name, host, m->ids, m->why);
	resolve_start(m);
	return 0;
}

void mig_resolve_ask(struct mig *m)
{
	(void)smig_msg_put_mig_id(peer_tx(m->peer), SMIG_MSG_MIG_QUERY, &m->p.id);
	peer_kick(m->peer);
}

static void resolve_outcome(struct mig *m, uint8_t outcome)
{
	char detail[SMIG_REASON_MAX + 1];

	smig_info("event=migration_resolved vm=%s to=%s id=%s outcome=%s", m->vm_name,
		  m->peer_host, m->ids, outcome_names[outcome]);
	if (outcome == SMIG_OUTCOME_PENDING) {
		m->resolve_next_ms = loop_now_ms() + RESOLVE_PENDING_MS;
		return;
	}
	audit_write(m->d, "smigd", "vm.migrate", m->vm_name, "allow", "", "resolved",
		    outcome == SMIG_OUTCOME_COMMITTED ? "the destination had resumed it"
						      : "the destination had no copy");
	if (outcome == SMIG_OUTCOME_COMMITTED) {
		snprintf(detail, sizeof(detail),
			 "the answer to COMMIT was lost (%s); %s confirmed it resumed the VM", m->why,
			 m->peer_host);
		m->t_end = loop_now_ns();
		m->outcome = STATS_COMPLETED;
		vm_retire(m->vm); /* quit QEMU, wipe the vTPM state, forget the VM */
		m->vm = NULL;
		mig_src_finish(m, "unknown", detail);
		return;
	}
	vm_commit_clear(m->vm);
	vm_outgoing_clear(m->vm); /* the VM is this host's still */
	if (m->src_gone) {
		smig_err("event=vm_lost vm=%s reason=\"its QEMU here died while the commit was "
			 "unresolved and %s has no copy\"",
			 m->vm_name, m->peer_host);
		vm_note_error(m->vm, "its QEMU died here while the commit to %s was unresolved, and "
			      "%s had no copy: start it again (smig vm start %s)",
			      m->peer_host, m->peer_host, m->vm_name);
	} else {
		vm_note_error(m->vm, "the commit of migration %s to %s was lost (%s); %s had "
			      "no copy, so it resumed here",
			      m->ids, m->peer_host, m->why, m->peer_host);
		mig_src_resume(m);
	}
	mig_reply_err(m, "migration_failed",
		      "%s to %s failed at the commit (%s); %s confirmed it has no copy, so "
		      "%s",
		      m->vm_name, m->peer_host, m->why, m->peer_host,
		      m->src_gone ? "the VM runs nowhere (its QEMU here died): start it "
				    "again with smig vm start"
				  : "the VM is running here again");
	mig_set_state(m, SMIG_MST_DONE);
	mig_free(m);
}

void mig_resolve_frame(struct mig *m, const struct smig_frame *f)
{
	struct smig_mig_in_msg in;

	/* one answer per connection, whatever it was */
	peer_release(m->peer);
	m->peer = NULL;
	if (smig_migproto_rx(&m->p, f, &in) != SMIG_IN_OUTCOME) {
		smig_warn("event=protocol_violation host=%s reason=\"%s while resolving %s\"",
			  m->peer_host, in.text, m->ids);
		return;
	}
	resolve_outcome(m, in.outcome);
}
