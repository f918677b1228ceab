/*
 * control_cmd.c - what the control socket's commands do: the table of
 * commands with the policy action each needs, the checks of their
 * arguments, and the handlers (or the module each one forwards to).
 * control.c reads requests and writes replies; ctl_dispatch() sits between.
 */
#include "control/control.h"
#include "ctl.h"
#include "log.h"
#include "migration/migrate.h"
#include "msg.h"
#include "peer/peer.h"
#include "policy/authz.h"
#include "control/testhooks.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef void (*ctl_handler)(struct smigd *d, const json_t *args, struct ctl_ref *ref);

/* What the neighbours told us of a host (VERDICT): who, what, why, when. */
static json_t *reports_json(const struct host_state *hs)
{
	json_t *arr = json_array();
	char at[SMIG_TIME_ISO_LEN];

	for (size_t i = 0; i < hs->nreports; i++) {
		smig_time_iso_ms(hs->reports[i].time_ms, at);
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s}", "by", hs->reports[i].by,
						     "verdict", hs->reports[i].verdict, "reason",
						     hs->reports[i].reason, "at", at));
	}
	return arr;
}

static json_t *host_json(struct smigd *d, const struct smig_host *h)
{
	struct host_state *hs = smigd_host_state(d, h->name);
	char fp[SMIG_FP_STR_LEN];
	json_t *o;

	smig_fp_format(h->fp, fp);
	o = json_pack("{s:s,s:s,s:i,s:s,s:b}", "name", h->name, "address", h->addr, "port",
		      (int)h->port, "fingerprint", fp, "self", strcmp(h->name, d->cfg.host) == 0);
	if (o && h->has_next) {
		smig_fp_format(h->next_fp, fp);
		json_object_set_new(o, "next_fingerprint", json_string(fp));
	}
	if (o && hs) {
		json_object_set_new(o, "last_ok", json_integer((json_int_t)hs->last_ok));
		json_object_set_new(o, "last_fail", json_integer((json_int_t)hs->last_fail));
		json_object_set_new(o, "last_rtt_ms", json_real(hs->last_rtt_ms));
		json_object_set_new(o, "last_error", json_string(hs->last_error));
		if (strcmp(h->name, d->cfg.host) == 0)
			json_object_set_new(o, "attestation", attest_self_json(d));
		else
			json_object_set_new(o, "attestation",
					    attest_verdict_json(&hs->verdict, hs->attested_at));
		if (hs->verdict.authentic) {
			json_object_set_new(o, "free_mib",
					    json_integer((json_int_t)hs->evidence.free_mib));
			json_object_set_new(o, "maintenance",
					    json_boolean(hs->evidence.maintenance));
		}
		if (strcmp(h->name, d->cfg.host) == 0)
			json_object_set_new(o, "maintenance",
					    json_boolean(attest_maintenance(d)->on));
		json_object_set_new(o, "reports", reports_json(hs));
	}
	return o;
}

/* Answers bad_request and returns false unless args only has allowed keys. */
static bool args_ok(struct smigd *d, const char *cmd, const json_t *args,
		    const char *const *allowed, struct ctl_ref *ref)
{
	char err[128];

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) == 0)
		return true;
	ctl_reply_err(d, ref, "bad_request", "%s: %s", cmd, err);
	return false;
}

/* A certificate as status shows it: who, which, until when, how long still. */
static json_t *cert_json(const struct smigd *d, const struct smig_cert_info *ci)
{
	char fp[SMIG_FP_STR_LEN], until[32];
	long days;
	enum smig_cert_expiry x = smig_cert_expiry(ci, time(NULL), d->cfg.tls_warn_days, &days);

	smig_fp_format(ci->fp, fp);
	smig_cert_time(ci->not_after, until);
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "subject", ci->subject, "fingerprint", fp,
			 "not_after", until, "not_after_unix", (json_int_t)ci->not_after,
			 "days_left", (json_int_t)days, "state",
			 x == SMIG_CERT_EXPIRED ? "expired" : x == SMIG_CERT_EXPIRING ? "expiring" : "ok");
}

static void cmd_status(struct smigd *d, const json_t *args,
		       struct ctl_ref *ref)
{
	static const char *const allowed[] = { NULL };
	char fp[SMIG_FP_STR_LEN];
	json_t *res;

	if (!args_ok(d, "status", args, allowed, ref))
		return;
	smig_fp_format(smig_tls_ctx_fp(d->tls), fp);
	res = json_pack("{s:s,s:s,s:i,s:I,s:s,s:i,s:s,s:s,s:i,s:i,"
			       "s:{s:I,s:I,s:I,s:I,s:I},s:{s:i,s:i,s:i}}",
			       "host", d->cfg.host, "version", SMIG_VERSION, "pid", (int)getpid(),
			       "uptime_s", (json_int_t)(time(NULL) - d->started), "listen",
			       d->cfg.listen_addr, "port", (int)d->cfg.listen_port,
			       "control_socket", d->cfg.control_socket, "fingerprint", fp,
			       "hosts", (int)smigd_hosts(d)->n, "peers_connected", (int)peer_count(d),
			       "stats", "peers_accepted", (json_int_t)peer_stats(d)->accepted,
			       "peers_refused", (json_int_t)peer_stats(d)->refused,
			       "handshakes_ok", (json_int_t)peer_stats(d)->handshakes_ok,
			       "handshakes_failed", (json_int_t)peer_stats(d)->handshakes_failed,
			       "requests", (json_int_t)ctl_requests(d), "caller", "uid",
			       (int)ref->cred.uid, "gid", (int)ref->cred.gid, "pid", (int)ref->cred.pid);
	json_object_set_new(res, "certificate", cert_json(d, smig_tls_ctx_cert(d->tls)));
	json_object_set_new(res, "ca", cert_json(d, smig_tls_ctx_ca(d->tls)));
	json_object_set_new(res, "warn_days", json_integer(d->cfg.tls_warn_days));
	json_object_set_new(res, "attestation", attest_self_json(d));
	json_object_set_new(res, "evacuating", json_boolean(evac_running(d)));
	json_object_set_new(res, "maintenance", maint_json(attest_maintenance(d)));
	json_object_set_new(res, "capacity", vm_res_capacity_json(d));
	json_object_set_new(res, "store", store_status_json(d));
	ctl_reply_ok(d, ref, res);
}

static void cmd_hosts(struct smigd *d, const json_t *args,
		      struct ctl_ref *ref)
{
	static const char *const allowed[] = { NULL };
	json_t *arr;

	if (!args_ok(d, "hosts", args, allowed, ref))
		return;
	arr = json_array();
	for (size_t i = 0; i < smigd_hosts(d)->n; i++)
		json_array_append_new(arr, host_json(d, &smigd_hosts(d)->v[i]));
	/* with a fleet store, its members as last read (the table stays what is trusted) */
	ctl_reply_ok(d, ref, json_pack("{s:o,s:o*}", "hosts", arr, "store", store_members_json(d)));
}

static void cmd_ping(struct smigd *d, const json_t *args,
		     struct ctl_ref *ref)
{
	static const char *const allowed[] = { "host", NULL };
	const json_t *host = json_object_get(args, "host");

	if (!args_ok(d, "ping", args, allowed, ref))
		return;
	if (!json_is_string(host)) {
		ctl_reply_err(d, ref, "bad_request", "ping needs args.host, a string");
		return;
	}
	peer_ping(d, json_string_value(host), ref);
}

static void cmd_vm_family(struct smigd *d, const json_t *args, struct ctl_ref *ref,
			  const char *sub)
{
	static const char *const allowed[] = { "vm", "spec", "force", "timeout_s", "all", NULL };

	if (!args_ok(d, sub, args, allowed, ref))
		return;
	cmd_vm(d, sub, args, ref);
}

#define VM_CMD(sub)                                                                  \
	static void cmd_vm_##sub(struct smigd *d, const json_t *args, struct ctl_ref *ref) \
	{                                                                            \
		cmd_vm_family(d, args, ref, #sub);                                          \
	}
VM_CMD(define)
VM_CMD(undefine)
VM_CMD(start)
VM_CMD(stop)
VM_CMD(reboot)
VM_CMD(list)
VM_CMD(show)
VM_CMD(console)
VM_CMD(ping)
VM_CMD(resume)

static void cmd_migrate(struct smigd *d, const json_t *args,
			struct ctl_ref *ref)
{
	static const char *const allowed[] = { "vm", "to", "downtime_ms", "max_bandwidth",
					       "channels", "cancel", NULL };
	const json_t *vm = json_object_get(args, "vm");
	const json_t *to = json_object_get(args, "to");
	const json_t *dt = json_object_get(args, "downtime_ms");
	const json_t *bw = json_object_get(args, "max_bandwidth");
	const json_t *ch = json_object_get(args, "channels");
	struct mig_opts o = { 0 };

	if (!args_ok(d, "migrate", args, allowed, ref))
		return;
	if (!json_is_string(vm)) {
		ctl_reply_err(d, ref, "bad_request", "migrate needs args.vm, a string");
		return;
	}
	if (json_is_true(json_object_get(args, "cancel"))) {
		if (to || dt || bw || ch) {
			ctl_reply_err(d, ref, "bad_request",
				      "migrate with cancel takes args.vm alone (a VM or a migration's "
				      "id)");
			return;
		}
		if (!evac_place_cancel(d, json_string_value(vm), ref))
			mig_cancel(d, json_string_value(vm), ref);
		return;
	}
	if (!json_is_string(to) || (dt && (!json_is_integer(dt) || json_integer_value(dt) < 1 ||
					   json_integer_value(dt) > 60000)) ||
	    (bw && (!json_is_integer(bw) || json_integer_value(bw) < 1 ||
		    json_integer_value(bw) > 1000000)) ||
	    (ch && (!json_is_integer(ch) || json_integer_value(ch) < 1 ||
		    json_integer_value(ch) > SMIG_CHAN_MAX))) {
		ctl_reply_err(d, ref, "bad_request",
			      "migrate needs args.to (a host) and optional downtime_ms "
			      "(1-60000), max_bandwidth (1-1000000 MiB/s) and channels (1-16)");
		return;
	}
	o.channels = ch ? (int)json_integer_value(ch) : 0;
	o.downtime_ms = dt ? (int)json_integer_value(dt) : 0;
	o.max_bandwidth = bw ? (int)json_integer_value(bw) : 0;
	if (strcmp(json_string_value(to), "auto") == 0) { /* audited once the host is chosen */
		evac_place(d, json_string_value(vm), &o, ref);
		return;
	}
	/* Migrations are long: their start is audited too, not only the outcome. */
	audit_write(d, ref->audit.actor, ref->audit.action, ref->audit.target, "allow",
		    ref->audit.rule, "started", NULL);
	mig_start(d, json_string_value(vm), json_string_value(to), &o, ref);
}

/* migrate.watch: args.vm, the VM's name or the migration's id; progress, then its end. */
static void cmd_migrate_watch(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "vm", NULL };
	const json_t *job = json_object_get(args, "vm");

	if (!args_ok(d, "migrate.watch", args, allowed, ref))
		return;
	if (!json_is_string(job)) {
		ctl_reply_err(d, ref, "bad_request",
			      "migrate.watch needs args.vm, a VM's name or a migration's id");
		return;
	}
	mig_watch(d, json_string_value(job), ref);
}

/* migrate.list: the history, args.last (1-500, default 20), args.filter_vm. */
static void cmd_migrate_list(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "last", "filter_vm", NULL };
	const json_t *last = json_object_get(args, "last"), *vm = json_object_get(args, "filter_vm");

	if (!args_ok(d, "migrate.list", args, allowed, ref))
		return;
	if ((last && (!json_is_integer(last) || json_integer_value(last) < 0 ||
		      json_integer_value(last) > 500)) ||
	    (vm && !json_is_string(vm))) {
		ctl_reply_err(d, ref, "bad_request",
			      "migrate.list takes args.last (0-500, 0: all) and args.filter_vm (a VM "
			      "name)");
		return;
	}
	ctl_reply_ok(d, ref,
		     json_pack("{s:o}", "migrations",
			       mig_history_json(d, last ? (size_t)json_integer_value(last) : 20,
						json_string_value(vm))));
}

/* migrate.show: one migration of the history, by its id or a unique prefix of it. */
static void cmd_migrate_show(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "id", NULL };
	const json_t *id = json_object_get(args, "id");
	json_t *o;

	if (!args_ok(d, "migrate.show", args, allowed, ref))
		return;
	if (!json_is_string(id)) {
		ctl_reply_err(d, ref, "bad_request", "migrate.show needs args.id, a string");
		return;
	}
	o = mig_history_find(d, json_string_value(id));
	if (o == NULL)
		ctl_reply_err(d, ref, "not_found",
			      "no migration %s in this host's history (smig migrate list shows the "
			      "last ones; an id prefix needs 8 digits and one match)",
			      json_string_value(id));
	else
		ctl_reply_ok(d, ref, o);
}

/* policy.explain_migration: args.vm, args.to (optional): the migration policy that applies. */
static void cmd_policy_explain_mig(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "vm", "to", NULL };
	const json_t *vm = json_object_get(args, "vm"), *to = json_object_get(args, "to");
	char err[256];
	json_t *o;

	if (!args_ok(d, "policy.explain_migration", args, allowed, ref))
		return;
	if (!json_is_string(vm) || (to && !json_is_string(to))) {
		ctl_reply_err(d, ref, "bad_request",
			      "policy.explain_migration needs args.vm (a VM) and takes args.to (a "
			      "host)");
		return;
	}
	o = mig_explain(d, json_string_value(vm), json_string_value(to), err, sizeof(err));
	if (o == NULL)
		ctl_reply_err(d, ref, "not_found", "%s", err);
	else
		ctl_reply_ok(d, ref, o);
}

/* policy.check: how the policy answers another user's or a peer's request. */
static void cmd_policy_check(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	json_t *res = NULL;
	char err[512] = "";

	if (authz_check(d, args, &res, err, sizeof(err)) < 0)
		ctl_reply_err(d, ref, "bad_request", "%s", err);
	else
		ctl_reply_ok(d, ref, res);
}

/* NO_CHECK: the handler decides per item (vm.list shows what the caller may view). */
#define NO_CHECK SMIG_ACT_COUNT

static const struct {
	const char *name;
	ctl_handler fn;
	enum smig_action action;
} ctl_cmds[] = {
	{ "migrate", cmd_migrate, SMIG_ACT_VM_MIGRATE },
	{ "migrate.watch", cmd_migrate_watch, SMIG_ACT_VM_VIEW },
	{ "migrate.list", cmd_migrate_list, SMIG_ACT_HOST_VIEW },
	{ "migrate.show", cmd_migrate_show, SMIG_ACT_HOST_VIEW },
	{ "vm.define", cmd_vm_define, SMIG_ACT_VM_DEFINE },
	{ "vm.undefine", cmd_vm_undefine, SMIG_ACT_VM_DEFINE },
	{ "vm.start", cmd_vm_start, SMIG_ACT_VM_START },
	{ "vm.stop", cmd_vm_stop, SMIG_ACT_VM_STOP },
	{ "vm.reboot", cmd_vm_reboot, SMIG_ACT_VM_STOP },
	{ "vm.list", cmd_vm_list, NO_CHECK },
	{ "vm.show", cmd_vm_show, SMIG_ACT_VM_VIEW },
	{ "vm.console", cmd_vm_console, SMIG_ACT_VM_VIEW },
	{ "vm.ping", cmd_vm_ping, SMIG_ACT_VM_VIEW },
	{ "vm.resume", cmd_vm_resume, SMIG_ACT_VM_START },
	{ "status", cmd_status, SMIG_ACT_HOST_VIEW },
	{ "hosts", cmd_hosts, SMIG_ACT_HOST_VIEW },
	{ "ping", cmd_ping, SMIG_ACT_HOST_VIEW },
	{ "policy.check", cmd_policy_check, SMIG_ACT_POLICY_VIEW },
	{ "policy.explain_migration", cmd_policy_explain_mig, SMIG_ACT_VM_VIEW },
	{ "audit.show", cmd_audit_show, SMIG_ACT_AUDIT_VIEW },
	{ "audit.verify", cmd_audit_verify, SMIG_ACT_AUDIT_VIEW },
	{ "ivt.show", cmd_ivt_show, SMIG_ACT_HOST_VIEW },
	{ "ivt.enrol", cmd_ivt_enrol, SMIG_ACT_IVT_ENROL },
	{ "evacuate", cmd_evacuate, SMIG_ACT_HOST_EVACUATE },
	{ "maintenance", cmd_maintenance, SMIG_ACT_HOST_MAINTENANCE },
	{ "events", cmd_events, SMIG_ACT_HOST_VIEW },
	{ "ids.status", cmd_ids_status, SMIG_ACT_HOST_VIEW },
	{ "ids.unban", cmd_ids_unban, SMIG_ACT_IDS_MANAGE },
#ifdef SMIG_TEST_HOOKS
	{ "debug.qmp", testhook_qmp, SMIG_ACT_VM_DEFINE },
	{ "debug.worker", testhook_worker, SMIG_ACT_VM_DEFINE },
#endif
};

/*
 * migrate --to auto: a host the policy lets the caller send vm to (each
 * candidate is decided again as the placement asks it); with none, the
 * first other host of the table, whose refusal the request then gets (and
 * the audit and the IDS hear of); NULL when the table has no other host.
 */
static const char *any_target(struct smigd *d, const struct ctl_ref *ref, const char *vm)
{
	struct smig_policy_decision dec;
	const char *first = NULL;

	for (size_t i = 0; vm && i < smigd_hosts(d)->n; i++) {
		const char *h = smigd_hosts(d)->v[i].name;

		if (strcmp(h, d->cfg.host) == 0)
			continue;
		authz_decide(d, ref, SMIG_ACT_VM_MIGRATE, vm, h, &dec);
		if (dec.allow)
			return h;
		if (first == NULL)
			first = h;
	}
	return first;
}

/* The VM and target host a request is about, for the policy. */
static void request_scope(struct smigd *d, const struct smig_ctl_req *req,
			  const struct ctl_ref *ref, const char **vm, const char **target,
			  const char **id)
{
	const json_t *spec = json_object_get(req->args, "spec");

	const char *job;

	*vm = json_string_value(json_object_get(req->args, "vm"));
	*target = NULL;
	*id = NULL;
	if (strcmp(req->cmd, "vm.define") == 0)
		*vm = json_string_value(json_object_get(spec, "name"));
	if (strcmp(req->cmd, "migrate") != 0 && strcmp(req->cmd, "migrate.watch") != 0)
		return;
	*target = json_string_value(json_object_get(req->args, "to"));
	if (*target && strcmp(*target, "auto") == 0 && strcmp(req->cmd, "migrate") == 0)
		*target = any_target(d, ref, *vm);
	if (*vm && (strcmp(req->cmd, "migrate.watch") == 0 ||
		    json_is_true(json_object_get(req->args, "cancel")))) {
		/*
		 * cancel, watch: the migration the handler acts on decides, never
		 * what the request says of it: where it is going, and the VM a
		 * migration's id names
		 */
		*target = mig_target(d, *vm, &job);
		if (job && strcmp(job, *vm) != 0)
			*id = *vm; /* the caller named the migration by its id */
		if (job)
			*vm = job;
	}
}

bool ctl_dispatch(struct smigd *d, const struct smig_ctl_req *req, struct ctl_ref *ref)
{
	const char *vm, *target, *id;

	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++) {
		if (strcmp(ctl_cmds[i].name, req->cmd) != 0)
			continue;
		request_scope(d, req, ref, &vm, &target, &id);
		if (ctl_cmds[i].action == NO_CHECK ||
		    authz_request(d, ctl_cmds[i].action, vm, target, id, ref)) {
			if (strcmp(req->cmd, "migrate") == 0 && vm &&
			    json_is_string(json_object_get(req->args, "to")) &&
			    strcmp(json_string_value(json_object_get(req->args, "to")), "auto") == 0)
				snprintf(ref->audit.target, sizeof(ref->audit.target),
					 "vm:%s to:auto", vm);
			ctl_cmds[i].fn(d, req->args, ref);
		}
		return true;
	}
	return false;
}
