/*
 * control.c - the unix control socket: newline-delimited JSON requests
 * {"id", "cmd", "args"} and responses {"id", "ok", "result" | "error"}.
 *
 * The socket is 0660 and owned by the configured group; every accepted
 * client's credentials (SO_PEERCRED) are captured and logged with each
 * request so that authorisation and audit can name the caller.
 */
#include "smigd.h"
#include "buf.h"
#include "ctl.h"
#include "error.h"
#include "log.h"
#include "migrate.h"
#include "vm.h"

#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_LINE_MAX ((size_t)64 * 1024)
#define CTL_OUT_MAX ((size_t)4 * 1024 * 1024)
#define CTL_CLIENTS_MAX 128

struct ctl_client {
	struct ctl_client *next;
	struct smigd *d;
	uint64_t id;
	int fd;
	struct loop_watch *w;
	struct ucred cred;
	int ngroups; /* -1 when the kernel could not say */
	gid_t groups[CTL_GROUPS_MAX];
	struct smig_buf rx;
	struct smig_buf tx;
	bool closing; /* close once tx drains */
};

typedef void (*ctl_handler)(struct smigd *d, struct ctl_client *c, const json_t *args,
			    struct ctl_ref *ref);

/* Releases a client already taken off the list. */
static void client_destroy(struct ctl_client *c)
{
	loop_watch_del(c->d->loop, c->w);
	close(c->fd);
	smig_buf_clear(&c->rx);
	smig_buf_clear(&c->tx);
	free(c);
}

static void client_free(struct ctl_client *c)
{
	for (struct ctl_client **pp = &c->d->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	client_destroy(c);
}

static struct ctl_client *client_find(struct smigd *d, uint64_t id)
{
	for (struct ctl_client *c = d->clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* Sends what tx holds; false if the client was freed. */
static bool client_flush(struct ctl_client *c)
{
	while (smig_buf_remaining(&c->tx) > 0) {
		ssize_t w = send(c->fd, smig_buf_peek(&c->tx), smig_buf_remaining(&c->tx),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			client_free(c);
			return false;
		}
		(void)smig_buf_consume(&c->tx, (size_t)w);
	}
	if (smig_buf_remaining(&c->tx) == 0 && c->closing) {
		client_free(c);
		return false;
	}
	(void)loop_watch_mod(c->d->loop, c->w,
			     EPOLLIN | (smig_buf_remaining(&c->tx) ? EPOLLOUT : 0));
	return true;
}

static void client_send(struct ctl_client *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	if (text == NULL || smig_buf_put_bytes(&c->tx, text, strlen(text)) < 0 ||
	    smig_buf_put_u8(&c->tx, '\n') < 0) {
		smig_warn("event=control_overflow client=%llu", (unsigned long long)c->id);
		c->closing = true;
	}
	free(text);
	(void)client_flush(c);
}

bool ctl_ref_alive(struct smigd *d, const struct ctl_ref *ref)
{
	return ref->client_id && client_find(d, ref->client_id) != NULL;
}

/* An allowed request's outcome goes to the audit log with its reply. */
static void ref_audit(struct smigd *d, struct ctl_ref *ref, const json_t *msg)
{
	const json_t *err = json_object_get(msg, "error");
	struct ctl_audit *a = &ref->audit;

	if (!a->on)
		return;
	a->on = false;
	audit_write(d, a->actor, a->action, a->target, "allow", a->rule, err ? "failed" : "ok",
		    err ? json_string_value(json_object_get(err, "message")) : NULL);
}

static void ref_send(struct smigd *d, struct ctl_ref *ref, json_t *msg)
{
	struct ctl_client *c = ref->client_id ? client_find(d, ref->client_id) : NULL;
	void (*done)(struct smigd *, void *, const json_t *) = ref->done;

	ref_audit(d, ref, msg);
	ref->done = NULL;
	if (done)
		done(d, ref->done_arg, msg);
	if (c)
		client_send(c, msg);
	json_decref(msg);
	json_decref(ref->id);
	ref->id = NULL;
	ref->client_id = 0;
}

void ctl_progress(struct smigd *d, const struct ctl_ref *ref, json_t *progress)
{
	struct ctl_client *c = ref->client_id ? client_find(d, ref->client_id) : NULL;
	json_t *msg = json_pack("{s:O?,s:o}", "id", ref->id, "progress", progress);

	if (c && msg)
		client_send(c, msg);
	json_decref(msg);
}

struct ctl_follower {
	struct ctl_follower *next;
	struct ctl_ref ref;
};

void ctl_follow(struct smigd *d, struct ctl_followers *list, struct ctl_ref *ref,
		const json_t *items)
{
	struct ctl_follower *f = calloc(1, sizeof(*f));

	for (size_t i = 0; i < json_array_size(items); i++)
		ctl_progress(d, ref, json_incref(json_array_get(items, i)));
	if (f == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	f->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	f->next = list->head;
	list->head = f;
}

void ctl_followers_send(struct smigd *d, struct ctl_followers *list, const json_t *item)
{
	for (struct ctl_follower **pp = &list->head; *pp;) {
		struct ctl_follower *f = *pp;

		if (!ctl_ref_alive(d, &f->ref)) {
			*pp = f->next;
			json_decref(f->ref.id);
			free(f);
			continue;
		}
		ctl_progress(d, &f->ref, json_incref((json_t *)item));
		pp = &f->next;
	}
}

void ctl_followers_end(struct smigd *d, struct ctl_followers *list)
{
	while (list->head) {
		struct ctl_follower *f = list->head;

		list->head = f->next;
		ctl_reply_ok(d, &f->ref, json_pack("{s:s}", "end", "smigd stopped"));
		free(f);
	}
}

void ctl_reply_ok(struct smigd *d, struct ctl_ref *ref, json_t *result)
{
	ref_send(d, ref, json_pack("{s:O?,s:b,s:o}", "id", ref->id, "ok", 1, "result", result));
}

void ctl_reply_err(struct smigd *d, struct ctl_ref *ref, const char *code, const char *fmt,
		   ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ref_send(d, ref, json_pack("{s:O?,s:b,s:{s:s,s:s}}", "id", ref->id, "ok", 0, "error",
				   "code", code, "message", msg));
}

static json_t *host_json(struct smigd *d, const struct smig_host *h)
{
	struct host_state *hs = smigd_host_state(d, h->name);
	char fp[SMIG_FP_STR_LEN];
	json_t *o;

	smig_fp_format(h->fp, fp);
	o = json_pack("{s:s,s:s,s:i,s:s,s:b}", "name", h->name, "address", h->addr, "port",
		      (int)h->port, "fingerprint", fp, "self", strcmp(h->name, d->cfg.host) == 0);
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
		if (hs->verdict.authentic)
			json_object_set_new(o, "free_mib",
					    json_integer((json_int_t)hs->evidence.free_mib));
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

static void cmd_status(struct smigd *d, struct ctl_client *c, const json_t *args,
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
			       "hosts", (int)d->hosts.n, "peers_connected", (int)peer_count(d),
			       "stats", "peers_accepted", (json_int_t)d->stats.peers_accepted,
			       "peers_refused", (json_int_t)d->stats.peers_refused,
			       "handshakes_ok", (json_int_t)d->stats.handshakes_ok,
			       "handshakes_failed", (json_int_t)d->stats.handshakes_failed,
			       "requests", (json_int_t)d->stats.requests, "caller", "uid",
			       (int)c->cred.uid, "gid", (int)c->cred.gid, "pid", (int)c->cred.pid);
	json_object_set_new(res, "attestation", attest_self_json(d));
	json_object_set_new(res, "evacuating", json_boolean(d->evac != NULL));
	ctl_reply_ok(d, ref, res);
}

static void cmd_hosts(struct smigd *d, struct ctl_client *c, const json_t *args,
		      struct ctl_ref *ref)
{
	static const char *const allowed[] = { NULL };
	json_t *arr;

	(void)c;
	if (!args_ok(d, "hosts", args, allowed, ref))
		return;
	arr = json_array();
	for (size_t i = 0; i < d->hosts.n; i++)
		json_array_append_new(arr, host_json(d, &d->hosts.v[i]));
	ctl_reply_ok(d, ref, json_pack("{s:o}", "hosts", arr));
}

static void cmd_ping(struct smigd *d, struct ctl_client *c, const json_t *args,
		     struct ctl_ref *ref)
{
	static const char *const allowed[] = { "host", NULL };
	const json_t *host = json_object_get(args, "host");

	(void)c;
	if (!args_ok(d, "ping", args, allowed, ref))
		return;
	if (!json_is_string(host)) {
		ctl_reply_err(d, ref, "bad_request", "ping needs args.host, a string");
		return;
	}
	peer_ping(d, json_string_value(host), ref);
}

static void cmd_vm(struct smigd *d, struct ctl_client *c, const json_t *args,
		   struct ctl_ref *ref, const char *sub)
{
	static const char *const allowed[] = { "vm", "spec", NULL };

	(void)c;
	if (!args_ok(d, sub, args, allowed, ref))
		return;
	vm_cmd(d, sub, args, ref);
}

#define VM_CMD(sub)                                                                    \
	static void cmd_vm_##sub(struct smigd *d, struct ctl_client *c, const json_t *args, \
				 struct ctl_ref *ref)                                   \
	{                                                                              \
		cmd_vm(d, c, args, ref, #sub);                                         \
	}
VM_CMD(define)
VM_CMD(undefine)
VM_CMD(start)
VM_CMD(stop)
VM_CMD(list)
VM_CMD(show)
VM_CMD(console)

static void cmd_migrate(struct smigd *d, struct ctl_client *c, const json_t *args,
			struct ctl_ref *ref)
{
	static const char *const allowed[] = { "vm", "to", "downtime_ms", "max_bandwidth",
					       "cancel", NULL };
	const json_t *vm = json_object_get(args, "vm");
	const json_t *to = json_object_get(args, "to");
	const json_t *dt = json_object_get(args, "downtime_ms");
	const json_t *bw = json_object_get(args, "max_bandwidth");
	struct mig_opts o = { 0 };

	(void)c;
	if (!args_ok(d, "migrate", args, allowed, ref))
		return;
	if (!json_is_string(vm)) {
		ctl_reply_err(d, ref, "bad_request", "migrate needs args.vm, a string");
		return;
	}
	if (json_is_true(json_object_get(args, "cancel"))) {
		mig_cancel(d, json_string_value(vm), ref);
		return;
	}
	if (!json_is_string(to) || (dt && (!json_is_integer(dt) || json_integer_value(dt) < 1 ||
					   json_integer_value(dt) > 60000)) ||
	    (bw && (!json_is_integer(bw) || json_integer_value(bw) < 1 ||
		    json_integer_value(bw) > 1000000))) {
		ctl_reply_err(d, ref, "bad_request",
			      "migrate needs args.to (a host) and optional downtime_ms "
			      "(1-60000) and max_bandwidth (1-1000000 MiB/s)");
		return;
	}
	o.downtime_ms = dt ? (int)json_integer_value(dt) : 0;
	o.max_bandwidth = bw ? (int)json_integer_value(bw) : 0;
	/* Migrations are long: their start is audited too, not only the outcome. */
	audit_write(d, ref->audit.actor, ref->audit.action, ref->audit.target, "allow",
		    ref->audit.rule, "started", NULL);
	mig_start(d, json_string_value(vm), json_string_value(to), &o, ref);
}


static void cmd_audit_verify(struct smigd *d, struct ctl_client *c, const json_t *args,
			     struct ctl_ref *ref)
{
	static const char *const allowed[] = { NULL };

	(void)c;
	if (args_ok(d, "audit.verify", args, allowed, ref))
		audit_cmd_verify(d, ref);
}

#define FORWARD(fname, target)                                                        \
	static void fname(struct smigd *d, struct ctl_client *c, const json_t *args,   \
			  struct ctl_ref *ref)                                           \
	{                                                                              \
		(void)c;                                                               \
		target(d, args, ref);                                                  \
	}
FORWARD(cmd_policy_check, authz_cmd_check)
FORWARD(cmd_audit_show, audit_cmd_show)
FORWARD(cmd_ivt_enrol, attest_cmd_enrol)
FORWARD(cmd_ivt_show, attest_cmd_show)
FORWARD(cmd_evacuate, attest_cmd_evacuate)
FORWARD(cmd_events, monitor_cmd_events)
FORWARD(cmd_ids_status, monitor_cmd_status)
FORWARD(cmd_ids_unban, monitor_cmd_unban)

/* NO_CHECK: the handler decides per item (vm.list shows what the caller may view). */
#define NO_CHECK SMIG_ACT_COUNT

static const struct {
	const char *name;
	ctl_handler fn;
	enum smig_action action;
} ctl_cmds[] = {
	{ "migrate", cmd_migrate, SMIG_ACT_VM_MIGRATE },
	{ "vm.define", cmd_vm_define, SMIG_ACT_VM_DEFINE },
	{ "vm.undefine", cmd_vm_undefine, SMIG_ACT_VM_DEFINE },
	{ "vm.start", cmd_vm_start, SMIG_ACT_VM_START },
	{ "vm.stop", cmd_vm_stop, SMIG_ACT_VM_STOP },
	{ "vm.list", cmd_vm_list, NO_CHECK },
	{ "vm.show", cmd_vm_show, SMIG_ACT_VM_VIEW },
	{ "vm.console", cmd_vm_console, SMIG_ACT_VM_VIEW },
	{ "status", cmd_status, SMIG_ACT_HOST_VIEW },
	{ "hosts", cmd_hosts, SMIG_ACT_HOST_VIEW },
	{ "ping", cmd_ping, SMIG_ACT_HOST_VIEW },
	{ "policy.check", cmd_policy_check, SMIG_ACT_POLICY_VIEW },
	{ "audit.show", cmd_audit_show, SMIG_ACT_AUDIT_VIEW },
	{ "audit.verify", cmd_audit_verify, SMIG_ACT_AUDIT_VIEW },
	{ "ivt.show", cmd_ivt_show, SMIG_ACT_HOST_VIEW },
	{ "ivt.enrol", cmd_ivt_enrol, SMIG_ACT_IVT_ENROL },
	{ "evacuate", cmd_evacuate, SMIG_ACT_HOST_EVACUATE },
	{ "events", cmd_events, SMIG_ACT_HOST_VIEW },
	{ "ids.status", cmd_ids_status, SMIG_ACT_HOST_VIEW },
	{ "ids.unban", cmd_ids_unban, SMIG_ACT_IDS_MANAGE },
};

/* The VM and target host a request is about, for the policy. */
static void request_scope(struct smigd *d, const struct smig_ctl_req *req, const char **vm,
			  const char **target)
{
	const json_t *spec = json_object_get(req->args, "spec");

	*vm = json_string_value(json_object_get(req->args, "vm"));
	*target = NULL;
	if (strcmp(req->cmd, "vm.define") == 0)
		*vm = json_string_value(json_object_get(spec, "name"));
	if (strcmp(req->cmd, "migrate") != 0)
		return;
	*target = json_string_value(json_object_get(req->args, "to"));
	if (*target == NULL && *vm)
		*target = mig_target(d, *vm); /* --cancel: where it is going */
}

static void client_request(struct ctl_client *c, const char *line, size_t len)
{
	struct smigd *d = c->d;
	struct ctl_ref ref = { .client_id = c->id, .has_cred = true, .cred = c->cred,
			       .ngroups = c->ngroups };
	struct smig_ctl_req req;
	const char *vm, *target;
	char err[256];

	d->stats.requests++;
	if (smig_ctl_parse(line, len, &req, err, sizeof(err)) < 0) {
		ref.id = json_incref(req.id);
		smig_ctl_req_clear(&req);
		ctl_reply_err(d, &ref, "bad_request", "%s", err);
		return;
	}
	memcpy(ref.groups, c->groups, sizeof(ref.groups));
	ref.id = json_incref(req.id);
	smig_info("event=request cmd=%s uid=%d gid=%d pid=%d", req.cmd, (int)c->cred.uid,
		  (int)c->cred.gid, (int)c->cred.pid);
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++) {
		if (strcmp(ctl_cmds[i].name, req.cmd) == 0) {
			request_scope(d, &req, &vm, &target);
			if (ctl_cmds[i].action == NO_CHECK ||
			    authz_request(d, ctl_cmds[i].action, vm, target, &ref))
				ctl_cmds[i].fn(d, c, req.args, &ref);
			smig_ctl_req_clear(&req);
			return;
		}
	}
	ctl_reply_err(d, &ref, "bad_request", "unknown command \"%s\"", req.cmd);
	smig_ctl_req_clear(&req);
}

/* Handles complete lines; returns false if the client was freed. */
static bool client_lines(struct ctl_client *c)
{
	struct smigd *d = c->d;
	uint64_t id = c->id;

	for (;;) {
		const uint8_t *p = smig_buf_peek(&c->rx);
		size_t n = smig_buf_remaining(&c->rx);
		const uint8_t *nl = p ? memchr(p, '\n', n) : NULL;
		size_t len;

		if (nl == NULL)
			break;
		len = (size_t)(nl - p);
		client_request(c, (const char *)p, len);
		if (client_find(d, id) == NULL)
			return false;
		(void)smig_buf_consume(&c->rx, len + 1);
	}
	return true;
}

static void client_io(void *arg, uint32_t events)
{
	struct ctl_client *c = arg;

	if ((events & EPOLLOUT) && !client_flush(c))
		return;
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->closing)
		return;
	for (;;) {
		uint8_t *dst;
		ssize_t r;

		if (smig_buf_reserve(&c->rx, 4096, &dst) < 0) {
			smig_warn("event=control_line_too_long uid=%d max=%zu", (int)c->cred.uid,
				  CTL_LINE_MAX);
			client_free(c);
			return;
		}
		r = recv(c->fd, dst, 4096, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			client_free(c);
			return;
		}
		smig_buf_commit(&c->rx, (size_t)r);
		if (!client_lines(c))
			return;
	}
}

/* The caller's supplementary groups as the kernel has them for its process. */
static void peer_groups(struct ctl_client *c)
{
	socklen_t len = sizeof(c->groups);

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) < 0)
		c->ngroups = -1;
	else
		c->ngroups = (int)(len / sizeof(gid_t));
}

static void ctl_accept(void *arg, uint32_t events)
{
	struct smigd *d = arg;
	size_t n = 0;

	(void)events;
	for (struct ctl_client *c = d->clients; c; c = c->next)
		n++;
	for (;;) {
		socklen_t len = sizeof(struct ucred);
		struct ctl_client *c;
		int fd = accept4(d->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (n >= CTL_CLIENTS_MAX) {
			smig_warn("event=control_refused reason=too_many_clients max=%d",
				  CTL_CLIENTS_MAX);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->d = d;
		c->fd = fd;
		c->id = ++d->next_client_id;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
			smig_warn("event=control_refused reason=no_peer_credentials");
			close(fd);
			free(c);
			continue;
		}
		peer_groups(c);
		smig_buf_init(&c->rx, CTL_LINE_MAX);
		smig_buf_init(&c->tx, CTL_OUT_MAX);
		if (loop_watch_add(d->loop, fd, EPOLLIN, client_io, c, &c->w) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = d->clients;
		d->clients = c;
		n++;
		smig_debug("event=control_accept uid=%d gid=%d pid=%d", (int)c->cred.uid,
			   (int)c->cred.gid, (int)c->cred.pid);
	}
}

int ctl_open(struct smigd *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = d->cfg.control_socket;
	gid_t gid = (gid_t)-1;
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		smig_err("event=control_failed path=%s reason=path_too_long", path);
		return SMIG_ECONFIG;
	}
	if (d->cfg.control_group[0]) {
		struct group *g = getgrnam(d->cfg.control_group);
		if (g == NULL) {
			smig_err("event=control_failed reason=unknown_group group=%s",
				 d->cfg.control_group);
			return SMIG_ECONFIG;
		}
		gid = g->gr_gid;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	SMIG_ENSURE(fd >= 0, SMIG_EIO);
	(void)unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
	    (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) || listen(fd, 64) < 0 ||
	    loop_watch_add(d->loop, fd, EPOLLIN, ctl_accept, d, &d->ctl_w) < 0) {
		smig_err("event=control_failed path=%s reason=\"%s\"", path, strerror(errno));
		close(fd);
		return SMIG_EIO;
	}
	d->ctl_fd = fd;
	smig_info("event=control_listening path=%s", path);
	return 0;
}

void ctl_close_all(struct smigd *d)
{
	while (d->clients) {
		struct ctl_client *c = d->clients;
		d->clients = c->next;
		client_destroy(c);
	}
	if (d->ctl_fd >= 0) {
		loop_watch_del(d->loop, d->ctl_w);
		close(d->ctl_fd);
		(void)unlink(d->cfg.control_socket);
		d->ctl_fd = -1;
	}
}
