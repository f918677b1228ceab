/*
 * qemu-migrate.c - smig-bench-qemu: drives one of QEMU's own migrations
 * (plain TCP or native TLS, one stream or multifd with --multifd N)
 * between two running QEMUs over their QMP
 * sockets, and measures it the way smigd measures its own, so that
 * make bench can put the three side by side:
 *
 *   total     from the migrate command (or --t0-ns, when the destination
 *             QEMU's start is to count as in smig) to the destination's
 *             RESUME event;
 *   downtime  from the source's STOP event to the destination's RESUME;
 *   set-up    from t0 to the migrate command, plus QEMU's own setup-time
 *             (connect, and the TLS handshake for tls:).
 *
 * While the stream runs it samples query-migrate every 100 ms and writes
 * "ms bytes" lines to --samples for the throughput plot. The result is one
 * JSON object on stdout. Exit 0 when the VM runs on the destination.
 */
#include "qmp.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_MS 100 /* as smigd's progress events */
#define TIMEOUT_MS 600000

struct qmp_end {
	const char *path;
	int fd;
	char buf[256 * 1024];
	size_t len;
};

struct run {
	struct qmp_end src, dst;
	const char *uri;
	const char *tls_host; /* NULL: plain */
	long downtime_ms;
	long multifd; /* channels; 0: one stream */
	FILE *samples;
	double t0, t_migrate, t_stop, t_resume;
	const char *status; /* the source's last MIGRATION status */
	bool awaiting;             /* a command's reply is awaited ... */
	struct smig_qmp_msg reply; /* ... and lands here */
	json_t *final;      /* the source's query-migrate after completion */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "smig-bench-qemu: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void qmp_connect(struct qmp_end *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->path) >= (int)sizeof(sa.sun_path))
		die("QMP socket path too long: %s", e->path);
	e->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (e->fd < 0 || connect(e->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect to QMP at %s", e->path);
}

static void qmp_send(struct qmp_end *e, const char *cmd, json_t *args)
{
	char *line = smig_qmp_command(cmd, args, 0);
	size_t n = strlen(line), off = 0;

	while (off < n) {
		ssize_t w = write(e->fd, line + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("writing to QMP at %s failed", e->path);
		off += (size_t)w;
	}
	free(line);
}

/*
 * Reads what is there (waiting up to wait_ms for something) and hands each
 * complete line to on_msg. Returns -1 when QEMU hung up.
 */
static int qmp_pump(struct run *r, struct qmp_end *e,
		    void (*on_msg)(struct run *, struct qmp_end *, struct smig_qmp_msg *))
{
	ssize_t n = read(e->fd, e->buf + e->len, sizeof(e->buf) - e->len);
	char *nl;

	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	e->len += (size_t)n;
	while ((nl = memchr(e->buf, '\n', e->len)) != NULL) {
		size_t ll = (size_t)(nl - e->buf);
		struct smig_qmp_msg m;

		if (smig_qmp_parse(e->buf, ll, &m) == 0) {
			on_msg(r, e, &m);
			smig_qmp_msg_clear(&m);
		}
		memmove(e->buf, nl + 1, e->len - ll - 1);
		e->len -= ll + 1;
	}
	if (e->len == sizeof(e->buf))
		die("QMP line too long from %s", e->path);
	return 0;
}

static void keep_reply(struct run *r, struct qmp_end *e, struct smig_qmp_msg *m);

/* Blocks until the reply to the command just sent on e is in r->reply. */
static void qmp_await(struct run *r, struct qmp_end *e)
{
	r->awaiting = true;
	while (r->awaiting)
		if (qmp_pump(r, e, keep_reply) < 0)
			die("QEMU at %s hung up", e->path);
}

/* Sends cmd and blocks until its RETURN (events seen meanwhile are handled). */
static void qmp_call(struct run *r, struct qmp_end *e, const char *cmd, json_t *args)
{
	qmp_send(e, cmd, args);
	qmp_await(r, e);
	if (r->reply.kind == SMIG_QMP_ERROR) {
		fprintf(stderr, "smig-bench-qemu: %s: %s\n", cmd, r->reply.error_desc);
		exit(1);
	}
	smig_qmp_msg_clear(&r->reply);
}

static void on_event(struct run *r, struct qmp_end *e, const struct smig_qmp_msg *m)
{
	if (e == &r->src && strcmp(m->event, "STOP") == 0 && r->t_stop == 0)
		r->t_stop = now_ms();
	else if (e == &r->dst && strcmp(m->event, "RESUME") == 0 && r->t_resume == 0)
		r->t_resume = now_ms();
	else if (e == &r->src && strcmp(m->event, "MIGRATION") == 0) {
		const char *s = json_string_value(json_object_get(m->data, "status"));

		if (s != NULL)
			r->status = strcmp(s, "completed") == 0 ? "completed"
				    : strcmp(s, "failed") == 0	 ? "failed"
				    : strcmp(s, "cancelled") == 0 ? "cancelled"
								  : "active";
	}
}

static void keep_reply(struct run *r, struct qmp_end *e, struct smig_qmp_msg *m)
{
	if (m->kind == SMIG_QMP_EVENT) {
		on_event(r, e, m);
		return;
	}
	if (m->kind == SMIG_QMP_ERROR && !r->awaiting)
		die("QEMU refused: %s", m->error_desc);
	if (m->kind == SMIG_QMP_GREETING || !r->awaiting)
		return;
	r->reply = *m;
	m->root = NULL; /* moved */
	r->awaiting = false;
}

static void sample(struct run *r)
{
	const json_t *ram;

	qmp_send(&r->src, "query-migrate", NULL);
	qmp_await(r, &r->src);
	ram = json_object_get(r->reply.ret, "ram");
	if (ram != NULL && r->samples != NULL)
		fprintf(r->samples, "%.1f %lld\n", now_ms() - r->t0,
			(long long)json_integer_value(json_object_get(ram, "transferred")));
	if (r->status != NULL && strcmp(r->status, "completed") == 0 && r->final == NULL)
		r->final = json_incref(r->reply.root);
	smig_qmp_msg_clear(&r->reply);
}

static void setup(struct run *r)
{
	json_t *caps = json_pack("{s:[{s:s,s:b},{s:s,s:b}]}", "capabilities", "capability",
				 "events", "state", 1, "capability", "multifd", "state",
				 r->multifd > 0);

	qmp_call(r, &r->src, "qmp_capabilities", NULL);
	qmp_call(r, &r->dst, "qmp_capabilities", NULL);
	qmp_call(r, &r->src, "migrate-set-capabilities", json_deep_copy(caps));
	qmp_call(r, &r->dst, "migrate-set-capabilities", caps);
	if (r->tls_host != NULL) {
		qmp_call(r, &r->dst, "migrate-set-parameters", json_pack("{s:s}", "tls-creds", "tls0"));
		qmp_call(r, &r->src, "migrate-set-parameters",
			 json_pack("{s:s,s:s}", "tls-creds", "tls0", "tls-hostname", r->tls_host));
	}
	if (r->multifd > 0) {
		qmp_call(r, &r->src, "migrate-set-parameters",
			 json_pack("{s:I}", "multifd-channels", (json_int_t)r->multifd));
		qmp_call(r, &r->dst, "migrate-set-parameters",
			 json_pack("{s:I}", "multifd-channels", (json_int_t)r->multifd));
	}
	/* as smigd does: the downtime asked for, and no bandwidth cap */
	qmp_call(r, &r->src, "migrate-set-parameters",
		 json_pack("{s:I,s:I}", "downtime-limit", (json_int_t)r->downtime_ms,
			   "max-bandwidth", (json_int_t)1 << 40));
	qmp_call(r, &r->dst, "migrate-incoming", json_pack("{s:s}", "uri", r->uri));
}

static void wait_done(struct run *r)
{
	double next = now_ms() + SAMPLE_MS;

	while (r->t_resume == 0 || r->final == NULL) {
		struct pollfd p[2] = { { r->src.fd, POLLIN, 0 }, { r->dst.fd, POLLIN, 0 } };
		double left = next - now_ms();

		if (r->status != NULL && strcmp(r->status, "failed") == 0)
			die("QEMU's migration %s", r->status);
		if (now_ms() - r->t0 > TIMEOUT_MS)
			die("no completion within 10 minutes");
		if (left <= 0 || (r->status && strcmp(r->status, "completed") == 0 && !r->final)) {
			sample(r);
			next = now_ms() + SAMPLE_MS;
			continue;
		}
		if (poll(p, 2, (int)left + 1) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if ((p[0].revents & (POLLIN | POLLHUP)) && qmp_pump(r, &r->src, keep_reply) < 0)
			die("source QEMU at %s hung up", r->src.path);
		if ((p[1].revents & (POLLIN | POLLHUP)) && qmp_pump(r, &r->dst, keep_reply) < 0)
			die("destination QEMU at %s hung up", r->dst.path);
	}
}

static void report(const struct run *r)
{
	const json_t *ram = json_object_get(r->final, "return");
	const json_t *ret = ram;
	json_t *out;
	double total = r->t_resume - r->t0;
	json_int_t bytes;

	ram = json_object_get(ret, "ram");
	bytes = json_integer_value(json_object_get(ram, "transferred"));
	json_int_t qsetup = json_integer_value(json_object_get(ret, "setup-time"));

	/* set-up: everything before the stream, the destination QEMU's start included */
	out = json_pack("{s:s,s:f,s:f,s:I,s:f,s:I,s:I,s:I,s:f}", "status", "completed", "total_ms",
			total, "downtime_ms", r->t_resume - r->t_stop, "qemu_downtime_ms",
			json_integer_value(json_object_get(ret, "downtime")), "setup_ms",
			r->t_migrate - r->t0 + (double)qsetup, "qemu_setup_ms", qsetup, "bytes", bytes,
			"passes", json_integer_value(json_object_get(ram, "dirty-sync-count")),
			"mbps", json_number_value(json_object_get(ram, "mbps")));
	json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(out);
}

static void usage(void)
{
	fprintf(stderr, "usage: smig-bench-qemu --src QMP --dst QMP --uri URI [--tls-hostname H]\n"
			"                       [--downtime-ms N] [--multifd CHANNELS] [--samples FILE]\n"
			"                       [--t0-ns NS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct run r = { .downtime_ms = 300 };
	const char *samples = NULL;
	double t0 = 0;

	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(argv[i], "--src") == 0)
			r.src.path = v;
		else if (strcmp(argv[i], "--dst") == 0)
			r.dst.path = v;
		else if (strcmp(argv[i], "--uri") == 0)
			r.uri = v;
		else if (strcmp(argv[i], "--tls-hostname") == 0)
			r.tls_host = v;
		else if (strcmp(argv[i], "--downtime-ms") == 0)
			r.downtime_ms = strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--multifd") == 0)
			r.multifd = strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--samples") == 0)
			samples = v;
		else if (strcmp(argv[i], "--t0-ns") == 0)
			t0 = strtod(v, NULL) / 1e6;
		else
			usage();
	}
	if (r.src.path == NULL || r.dst.path == NULL || r.uri == NULL || r.downtime_ms <= 0)
		usage();
	if (samples != NULL && (r.samples = fopen(samples, "w")) == NULL)
		die("cannot write %s", samples);
	qmp_connect(&r.src);
	qmp_connect(&r.dst);
	setup(&r);
	r.t_migrate = now_ms();
	r.t0 = t0 > 0 ? t0 : r.t_migrate;
	qmp_send(&r.src, "migrate", json_pack("{s:s}", "uri", r.uri));
	wait_done(&r);
	report(&r);
	if (r.samples != NULL)
		fclose(r.samples);
	json_decref(r.final);
	return 0;
}
