/*
 * engine.c - the migration engine (migrate.h): its start, and the dispatch
 * of what the parts below tell it (frames and lost connections from the
 * peer part, QEMU events and exits from the VM part) to the source side
 * (mig_src.c, mig_resolve.c) or the destination side (mig_dst.c). The
 * migration record and what both sides share is migrate.c's.
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
#include "migration/mig_int.h"
#include "error.h"
#include "log.h"
#include "msg.h"

#include <string.h>

static void mig_peer_frame(struct smigd *d, struct peer *p, struct mig *m, const struct smig_frame *f)
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

static void mig_peer_lost(struct mig *m, const char *why)
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

static void mig_vm_event(struct mig *m, const struct smig_qmp_msg *ev)
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
	if (strcmp(status, "setup") == 0)
		m->qemu_began = true;
	if (m->p.source && !m->qemu_began) {
		/*
		 * The end of an earlier migration of this VM: QEMU finishes
		 * cancelling one in its own time, after smig has reported it
		 * failed. This one has not begun in QEMU; ignore it.
		 */
		smig_debug("event=qemu_migration_stale vm=%s status=%s", m->vm_name, status);
		return;
	}
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

static void mig_vm_exited(struct mig *m, const char *why)
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
		mig_src_fail(m, SMIG_EIO, "%s here during the migration", why);
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

int mig_init(struct smigd *d)
{
	static const struct peer_mig_ops peer_ops = {
		.ready = mig_peer_ready,
		.frame = mig_peer_frame,
		.lost = mig_peer_lost,
		.tx_space = mig_peer_tx_space,
		.channel = mig_dst_channel,
	};
	static const struct vm_mig_ops vm_ops = {
		.event = mig_vm_event,
		.exited = mig_vm_exited,
		.json = mig_json,
		.resolve = mig_resolve_adopted,
	};

	SMIG_GUARD(mig_list_init(d));
	peer_set_mig_ops(d, &peer_ops);
	vm_set_mig_ops(d, &vm_ops);
	return 0;
}
