/*
 * control.c - the unix control socket: newline-delimited JSON requests
 * {"id", "cmd", "args"} and responses {"id", "ok", "result" | "error"}.
 *
 * The socket is 0660 and owned by the configured group; every accepted
 * client's credentials (SO_PEERCRED) are captured and logged with each
 * request so that authorisation and audit can name the caller. What the
 * commands do is in control_cmd.c.
 */
#include "control/control.h"
#include "buf.h"
#include "ctl.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
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
#define CTL_ROOT_RESERVE 16 /* slots only root may take: no user locks root out */

/* The control part's state. */
struct ctl {
	int fd;
	struct loop_watch *w;
	struct ctl_client *clients;
	uint64_t next_client_id;
	uint64_t requests;
	uint64_t refused;         /* connections refused at accept */
	uint64_t refused_logged;  /* ... of which a log line said so */
	uint64_t refused_log_ms;  /* when the last such line was */
};

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
	int trace_fd; /* test builds: what the client sent (SMIG_TRACE_DIR) */
};

#ifdef SMIG_STOP_POINTS
/*
 * Test builds: SMIG_TRACE_DIR=DIR keeps what each client sent in
 * DIR/ctl-<pid>-<client>.trace, in fuzz_control's input format (a byte for
 * the caller, then u8 length + bytes per read), so the CLI's real requests
 * seed that target's corpus.
 */
static void client_trace(struct ctl_client *c, const uint8_t *p, size_t n)
{
	const char *dir = getenv("SMIG_TRACE_DIR");
	char path[512];

	if (dir == NULL || *dir == '\0')
		return;
	if (c->trace_fd < 0) {
		uint8_t who = c->cred.uid != 0;

		snprintf(path, sizeof(path), "%s/ctl-%d-%llu.trace", dir, (int)getpid(),
			 (unsigned long long)c->id);
		c->trace_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (c->trace_fd < 0 || write(c->trace_fd, &who, 1) < 0)
			return;
	}
	while (n > 0) {
		uint8_t len = n > 255 ? 255 : (uint8_t)n;

		if (write(c->trace_fd, &len, 1) < 0 || write(c->trace_fd, p, len) < 0)
			return;
		p += len;
		n -= len;
	}
}
#else
static void client_trace(struct ctl_client *c, const uint8_t *p, size_t n)
{
	(void)c;
	(void)p;
	(void)n;
}
#endif

/* Releases a client already taken off the list. */
static void client_destroy(struct ctl_client *c)
{
	loop_watch_del(c->d->loop, c->w);
	close(c->fd);
	if (c->trace_fd >= 0)
		close(c->trace_fd);
	smig_buf_clear(&c->rx);
	smig_buf_clear(&c->tx);
	free(c);
}

static void client_free(struct ctl_client *c)
{
	for (struct ctl_client **pp = &c->d->ctl->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	client_destroy(c);
}

static struct ctl_client *client_find(struct smigd *d, uint64_t id)
{
	for (struct ctl_client *c = d->ctl ? d->ctl->clients : NULL; c; c = c->next)
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

/* The reply sink: answers to a client go out on its socket. */
static bool sink_alive(void *arg, uint64_t client)
{
	return client_find(arg, client) != NULL;
}

static void sink_send(void *arg, uint64_t client, json_t *msg)
{
	struct ctl_client *c = client_find(arg, client);

	if (c)
		client_send(c, msg);
}

static void client_request(struct ctl_client *c, const char *line, size_t len)
{
	struct smigd *d = c->d;
	struct ctl_ref ref = { .client_id = c->id, .has_cred = true, .cred = c->cred,
			       .ngroups = c->ngroups };
	struct smig_ctl_req req;
	char err[256];

	d->ctl->requests++;
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
	if (!ctl_dispatch(d, &req, &ref))
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
		client_trace(c, dst, (size_t)r);
		smig_buf_commit(&c->rx, (size_t)r);
		if (!client_lines(c))
			return;
	}
}

int ctl_client_add(struct smigd *d, int fd, const struct ucred *cred, const gid_t *groups,
		   int ngroups)
{
	struct ctl_client *c = calloc(1, sizeof(*c));

	SMIG_ENSURE(c != NULL, SMIG_ENOMEM);
	c->d = d;
	c->fd = fd;
	c->trace_fd = -1;
	c->id = ++d->ctl->next_client_id;
	c->cred = *cred;
	c->ngroups = ngroups < 0 ? -1 : ngroups > CTL_GROUPS_MAX ? CTL_GROUPS_MAX : ngroups;
	if (c->ngroups > 0)
		memcpy(c->groups, groups, (size_t)c->ngroups * sizeof(gid_t));
	smig_buf_init(&c->rx, CTL_LINE_MAX);
	smig_buf_init(&c->tx, CTL_OUT_MAX);
	if (loop_watch_add(d->loop, fd, EPOLLIN, client_io, c, &c->w) < 0) {
		free(c);
		return SMIG_ENOMEM;
	}
	c->next = d->ctl->clients;
	d->ctl->clients = c;
	smig_debug("event=control_accept uid=%d gid=%d pid=%d", (int)c->cred.uid,
		   (int)c->cred.gid, (int)c->cred.pid);
	return 0;
}

/* Why a new connection from uid may not be taken (NULL: it may), in why. */
static const char *ctl_full(const struct smigd *d, uid_t uid, char *why, size_t len)
{
	size_t all = 0, users = 0, mine = 0;

	for (const struct ctl_client *c = d->ctl->clients; c; c = c->next) {
		all++;
		users += c->cred.uid != 0;
		mine += c->cred.uid == uid;
	}
	if (all >= CTL_CLIENTS_MAX)
		snprintf(why, len, "smigd holds %d control connections, its most", CTL_CLIENTS_MAX);
	else if (uid != 0 && mine >= (size_t)d->cfg.control_per_uid)
		snprintf(why, len, "uid %u holds %zu control connections (control.per_uid %d); "
			 "close one and ask again", (unsigned)uid, mine, d->cfg.control_per_uid);
	else if (uid != 0 && users >= CTL_CLIENTS_MAX - CTL_ROOT_RESERVE)
		snprintf(why, len, "users hold %zu control connections; the rest are root's",
			 users);
	else
		return NULL;
	return why;
}

/*
 * Refuses a connection with one line saying why, and says so in the log at
 * most once a second (with how many since), never in the audit log: a
 * local user could otherwise fill both by connecting in a loop.
 */
static void ctl_refuse(struct smigd *d, int fd, uid_t uid, const char *why)
{
	char line[400];
	int n = snprintf(line, sizeof(line),
			 "{\"ok\":false,\"error\":{\"code\":\"busy\",\"message\":\"%s\"}}\n", why);
	uint64_t now = loop_now_ms();

	if (n > 0 && (size_t)n < sizeof(line) && write(fd, line, (size_t)n) < 0)
		smig_debug("event=control_refuse_write reason=\"%s\"", strerror(errno));
	close(fd);
	d->ctl->refused++;
	if (now - d->ctl->refused_log_ms >= 1000) {
		smig_warn("event=control_refused uid=%u reason=\"%s\" refused=%llu since_last=%llu",
			  (unsigned)uid, why, (unsigned long long)d->ctl->refused,
			  (unsigned long long)(d->ctl->refused - d->ctl->refused_logged));
		d->ctl->refused_logged = d->ctl->refused;
		d->ctl->refused_log_ms = now;
	}
}

static void ctl_accept(void *arg, uint32_t events)
{
	struct smigd *d = arg;
	char why[256];

	(void)events;
	for (;;) {
		socklen_t len = sizeof(struct ucred);
		gid_t groups[CTL_GROUPS_MAX];
		socklen_t glen = sizeof(groups);
		int ngroups;
		struct ucred cred;
		int fd = accept4(d->ctl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			smig_warn("event=control_refused reason=no_peer_credentials");
			close(fd);
			continue;
		}
		if (ctl_full(d, cred.uid, why, sizeof(why))) {
			ctl_refuse(d, fd, cred.uid, why);
			continue;
		}
		/* the groups the caller's process has; unknown: authz asks NSS */
		ngroups = getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0
				  ? -1
				  : (int)(glen / sizeof(gid_t));
		if (ctl_client_add(d, fd, &cred, groups, ngroups) < 0) {
			close(fd);
			continue;
		}
	}
}

int ctl_open(struct smigd *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = d->cfg.control_socket;
	struct reply_sink sink = { .alive = sink_alive, .send = sink_send, .arg = d };
	gid_t gid = (gid_t)-1;
	mode_t old;
	int fd, rc;

	d->ctl = calloc(1, sizeof(*d->ctl));
	SMIG_ENSURE(d->ctl != NULL, SMIG_ENOMEM);
	d->ctl->fd = -1;
	reply_set_sink(d, &sink);

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
	/* made 0660 (never chmod-ed after the bind), its group set before anyone may connect */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) || listen(fd, 64) < 0 ||
	    loop_watch_add(d->loop, fd, EPOLLIN, ctl_accept, d, &d->ctl->w) < 0) {
		smig_err("event=control_failed path=%s reason=\"%s\"", path, strerror(errno));
		close(fd);
		return SMIG_EIO;
	}
	d->ctl->fd = fd;
	smig_info("event=control_listening path=%s", path);
	return 0;
}

void ctl_close_all(struct smigd *d)
{
	struct ctl *ctl = d->ctl;

	if (ctl == NULL)
		return;
	reply_set_sink(d, NULL);
	while (ctl->clients) {
		struct ctl_client *c = ctl->clients;
		ctl->clients = c->next;
		client_destroy(c);
	}
	if (ctl->fd >= 0) {
		loop_watch_del(d->loop, ctl->w);
		close(ctl->fd);
		(void)unlink(d->cfg.control_socket);
	}
	free(ctl);
	d->ctl = NULL;
}

uint64_t ctl_requests(const struct smigd *d)
{
	return d->ctl ? d->ctl->requests : 0;
}

size_t ctl_clients(const struct smigd *d)
{
	size_t n = 0;

	for (const struct ctl_client *c = d->ctl ? d->ctl->clients : NULL; c; c = c->next)
		n++;
	return n;
}
