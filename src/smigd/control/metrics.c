/*
 * metrics.c - smigd's metrics in the Prometheus text format (0.0.4), served
 * on metrics.listen (off without it) by libmicrohttpd, on the worker's own
 * event loop: MHD runs without threads of its own (MHD_USE_EPOLL, driven
 * from the loop by its epoll descriptor and a timer), so the page is made
 * from the worker's state with nothing shared between threads. The socket
 * is bound before the worker enters its sandbox; the page is GET /metrics,
 * read-only, and says nothing that `smig status` would not tell a local
 * user (no VM memory, keys or addresses of clients).
 */
#include "control/control.h"
#include "error.h"
#include "log.h"
#include "migration/migrate.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define METRICS_ACTIVE_MAX 64
#define METRICS_CONNS_MAX 16
#define METRICS_TICK_MS 1000 /* MHD's own timeouts (idle connections) are looked at this often */

#define METRICS_CACHE_MS 500 /* a page is made at most this often: scrapes cannot busy the loop */

struct metrics {
	struct MHD_Daemon *mhd;
	struct loop_watch *w;
	struct loop_timer *t;
	uint64_t scrapes;
	char *page; /* the last page made, when, and of which counts */
	size_t page_len;
	uint64_t page_ms;
	uint64_t page_gen;
};

static void help(FILE *f, const char *name, const char *type, const char *text)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A label value: Prometheus escapes backslash, double quote and newline. */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void hist(FILE *f, const char *name, const char *text, const struct stats_hist *h,
		 const double *bounds, size_t n)
{
	uint64_t cum = 0;

	help(f, name, "histogram", text);
	for (size_t i = 0; i < n; i++) {
		cum += h->bucket[i];
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i], (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
	fprintf(f, "%s_sum %.6f\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

/* A gauge per running outgoing migration whose memory QEMU has counted, by VM. */
static void out_gauge(FILE *f, const char *name, const char *text, const struct mig_active *a,
		      size_t n, uint64_t (*value)(const struct mig_active *))
{
	help(f, name, "gauge", text);
	for (size_t i = 0; i < n; i++) {
		if (!a[i].out || a[i].ram_total == 0)
			continue;
		fprintf(f, "%s{vm=\"", name);
		label(f, a[i].vm);
		fprintf(f, "\"} %llu\n", (unsigned long long)value(&a[i]));
	}
}

static uint64_t remaining(const struct mig_active *a)
{
	return a->ram_remaining;
}

static uint64_t dirty_rate(const struct mig_active *a)
{
	return a->dirty_rate;
}

static void migrations(FILE *f, struct smigd *d)
{
	static const char *const dir[] = { "out", "in" };
	static const char *const outcome[] = { "completed", "failed", "cancelled" };
	const struct smigd_stats *s = &d->stats;
	struct mig_active *a = calloc(METRICS_ACTIVE_MAX, sizeof(*a));
	size_t n = a ? mig_active(d, a, METRICS_ACTIVE_MAX) : 0, active[2] = { 0, 0 }, queued = 0;

	if (n > METRICS_ACTIVE_MAX)
		n = METRICS_ACTIVE_MAX; /* the first ones are shown */

	help(f, "smig_migrations_total", "counter",
	     "Migrations that ended, by direction (out: this host was the source) and outcome.");
	for (int i = 0; i < 2; i++)
		for (int o = 0; o < STATS_OUTCOMES; o++)
			fprintf(f, "smig_migrations_total{direction=\"%s\",outcome=\"%s\"} %llu\n",
				dir[i], outcome[o], (unsigned long long)s->migrations[i][o]);
	help(f, "smig_migration_bytes_total", "counter",
	     "Stream bytes moved by migrations that ended, by direction.");
	for (int i = 0; i < 2; i++)
		fprintf(f, "smig_migration_bytes_total{direction=\"%s\"} %llu\n", dir[i],
			(unsigned long long)s->bytes[i]);
	help(f, "smig_migration_passes_total", "counter",
	     "Memory passes of outgoing migrations that ended.");
	fprintf(f, "smig_migration_passes_total %llu\n", (unsigned long long)s->passes);
	hist(f, "smig_migration_duration_seconds",
	     "Total time of completed outgoing migrations, from the request to the commit.",
	     &s->duration, stats_duration_bounds, stats_duration_nbounds);
	hist(f, "smig_migration_downtime_seconds",
	     "The pause the guest saw in completed outgoing migrations.", &s->downtime,
	     stats_downtime_bounds, stats_downtime_nbounds);
	for (size_t i = 0; i < n; i++) {
		if (a[i].queued)
			queued++;
		else
			active[a[i].out ? 0 : 1]++;
	}
	help(f, "smig_migrations_active", "gauge",
	     "Migrations under way, not yet ended, by direction (queued ones not counted).");
	for (int i = 0; i < 2; i++)
		fprintf(f, "smig_migrations_active{direction=\"%s\"} %zu\n", dir[i], active[i]);
	help(f, "smig_migrations_queued", "gauge",
	     "Outgoing migrations waiting for migration.parallel_outbound.");
	fprintf(f, "smig_migrations_queued %zu\n", queued);
	help(f, "smig_migration_data_processed_bytes", "gauge",
	     "Stream bytes a running migration has moved so far.");
	for (size_t i = 0; i < n; i++) {
		fputs("smig_migration_data_processed_bytes{vm=\"", f);
		label(f, a[i].vm);
		fprintf(f, "\",direction=\"%s\",peer=\"", a[i].out ? "out" : "in");
		label(f, a[i].peer);
		fprintf(f, "\",state=\"%s\"} %llu\n", a[i].state, (unsigned long long)a[i].bytes);
	}
	out_gauge(f, "smig_migration_data_remaining_bytes",
		  "Guest memory a running outgoing migration has still to send (QEMU's last figure).",
		  a, n, remaining);
	out_gauge(f, "smig_migration_dirty_memory_rate_bytes",
		  "Bytes per second the guest of a running outgoing migration dirties.", a, n,
		  dirty_rate);
	help(f, "smig_evacuations_total", "counter", "Evacuations of this host begun.");
	fprintf(f, "smig_evacuations_total %llu\n", (unsigned long long)s->evacuations);
	help(f, "smig_migration_escalations_total", "counter",
	     "Downtime-limit steps outgoing migrations took to converge.");
	fprintf(f, "smig_migration_escalations_total %llu\n", (unsigned long long)s->escalations);
	free(a);
}

static void vms(FILE *f, struct smigd *d)
{
	static const enum vm_state states[] = { VM_DEFINED,  VM_STARTING, VM_RUNNING, VM_PAUSED,
						VM_INCOMING, VM_STOPPING, VM_SHUTOFF, VM_CRASHED };

	help(f, "smig_vms", "gauge", "VMs this host has, by state.");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		unsigned n = 0;

		for (const struct vm *vm = vm_first(d); vm; vm = vm_next(vm))
			n += vm_state(vm) == states[i];
		fprintf(f, "smig_vms{state=\"%s\"} %u\n", vm_state_name(states[i]), n);
	}
}

static void peers(FILE *f, struct smigd *d)
{
	const struct smig_hosts *h = smigd_hosts(d);
	time_t now = time(NULL);

	help(f, "smig_peer_trust_level", "gauge",
	     "Each peer's trust from its last attestation: 0 none (untrusted or never attested), "
	     "1 unverified (its own word: no enrolled TPM), 2 attested, 3 trusted.");
	for (size_t i = 0; i < h->n; i++) {
		const struct host_state *hs = smigd_host_state_at(d, i);

		if (strcmp(h->v[i].name, d->cfg.host) == 0)
			continue;
		fputs("smig_peer_trust_level{host=\"", f);
		label(f, h->v[i].name);
		fprintf(f, "\"} %d\n", hs && hs->attested_at ? (int)hs->trust : 0);
	}
	help(f, "smig_peer_attestation_age_seconds", "gauge",
	     "Seconds since each peer was last attested (absent: never).");
	for (size_t i = 0; i < h->n; i++) {
		const struct host_state *hs = smigd_host_state_at(d, i);

		if (strcmp(h->v[i].name, d->cfg.host) == 0 || hs == NULL || hs->attested_at == 0)
			continue;
		fputs("smig_peer_attestation_age_seconds{host=\"", f);
		label(f, h->v[i].name);
		fprintf(f, "\"} %lld\n", (long long)(now - hs->attested_at));
	}
}

static void security(FILE *f, struct smigd *d)
{
	json_t *st = monitor_status_json(d);
	const char *kind;
	json_t *v;

	help(f, "smig_security_events_total", "counter", "Security events, by kind.");
	json_object_foreach(json_object_get(st, "events"), kind, v)
		fprintf(f, "smig_security_events_total{kind=\"%s\"} %lld\n", kind,
			(long long)json_integer_value(v));
	help(f, "smig_bans_active", "gauge", "Addresses the IDS bans now.");
	fprintf(f, "smig_bans_active %zu\n", json_array_size(json_object_get(st, "bans")));
	json_decref(st);
}

static void certs(FILE *f, struct smigd *d)
{
	const struct smig_cert_info *host = smig_tls_ctx_cert(d->tls), *ca = smig_tls_ctx_ca(d->tls);

	help(f, "smig_certificate_expiry_timestamp_seconds", "gauge",
	     "When this host's certificate and the cluster CA's end (Unix time).");
	fprintf(f, "smig_certificate_expiry_timestamp_seconds{cert=\"host\"} %lld\n",
		(long long)host->not_after);
	fprintf(f, "smig_certificate_expiry_timestamp_seconds{cert=\"ca\"} %lld\n",
		(long long)ca->not_after);
}

char *metrics_render(struct smigd *d, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (f == NULL)
		return NULL;
	help(f, "smig_build_info", "gauge", "smigd's version; always 1.");
	fprintf(f, "smig_build_info{version=\"%s\",host=\"", SMIG_VERSION);
	label(f, d->cfg.host);
	fputs("\"} 1\n", f);
	help(f, "smig_start_time_seconds", "gauge", "When smigd's worker started (Unix time).");
	fprintf(f, "smig_start_time_seconds %lld\n", (long long)d->started);
	help(f, "smig_host_trust_level", "gauge",
	     "This host's own check against the IVT: 0 none, 1 unverified (no enrolled TPM), "
	     "2 attested, 3 trusted.");
	fprintf(f, "smig_host_trust_level %d\n", (int)attest_self(d)->trust);
	migrations(f, d);
	vms(f, d);
	peers(f, d);
	security(f, d);
	certs(f, d);
	help(f, "smig_metrics_scrapes_total", "counter", "Requests for this page.");
	fprintf(f, "smig_metrics_scrapes_total %llu\n",
		(unsigned long long)(d->metrics ? d->metrics->scrapes : 0));
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **req)
{
	struct smigd *d = cls;
	size_t len = 0;
	char *body;

	(void)version;
	(void)upload;
	if (*req == NULL) { /* the headers: answer once the (empty) body is in */
		*req = d;
		return MHD_YES;
	}
	if (*upload_size != 0) { /* no request here has a body */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
			     strdup("only GET /metrics\n"), strlen("only GET /metrics\n"));
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", strdup("try /metrics\n"),
			     strlen("try /metrics\n"));
	d->metrics->scrapes++;
	if (d->metrics->page == NULL || d->metrics->page_gen != d->stats.gen ||
	    loop_now_ms() - d->metrics->page_ms >= METRICS_CACHE_MS) {
		free(d->metrics->page);
		d->metrics->page = metrics_render(d, &d->metrics->page_len);
		d->metrics->page_ms = loop_now_ms();
		d->metrics->page_gen = d->stats.gen;
	}
	body = d->metrics->page ? malloc(d->metrics->page_len ? d->metrics->page_len : 1) : NULL;
	if (body) {
		memcpy(body, d->metrics->page, d->metrics->page_len);
		len = d->metrics->page_len;
	}
	if (body == NULL)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			     strdup("out of memory\n"), strlen("out of memory\n"));
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static void run(struct smigd *d)
{
	if (d->metrics && d->metrics->mhd)
		(void)MHD_run(d->metrics->mhd);
}

static void on_io(void *arg, uint32_t events)
{
	(void)events;
	run(arg);
}

static void on_tick(void *arg)
{
	struct smigd *d = arg;

	d->metrics->t = NULL;
	run(d);
	(void)loop_timer_add(d->loop, METRICS_TICK_MS, on_tick, d, &d->metrics->t);
}

static int bind_listener(struct smigd *d, int *out)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, d->cfg.metrics_addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(d->cfg.metrics_port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, d->cfg.metrics_addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(d->cfg.metrics_port);
		len = sizeof(*s6);
	} else {
		return SMIG_EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	SMIG_ENSURE(fd >= 0, SMIG_EIO);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		smig_err("event=metrics_listen_failed addr=%s port=%u reason=\"%s\"",
			 d->cfg.metrics_addr, d->cfg.metrics_port, strerror(errno));
		close(fd);
		return SMIG_EIO;
	}
	*out = fd;
	return 0;
}

int metrics_open(struct smigd *d)
{
	const union MHD_DaemonInfo *info;
	struct metrics *m;
	int fd = -1;

	if (d->cfg.metrics_addr[0] == '\0')
		return 0;
	SMIG_GUARD(bind_listener(d, &fd));
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		close(fd);
		return SMIG_ENOMEM;
	}
	d->metrics = m;
	/* no thread of its own: the loop drives it (MHD_run) */
	m->mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, answer, d, MHD_OPTION_LISTEN_SOCKET,
				  fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNS_MAX,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)4,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
	if (m->mhd == NULL) {
		close(fd);
		smig_err("event=metrics_listen_failed addr=%s port=%u reason=\"libmicrohttpd did not "
			 "start\"",
			 d->cfg.metrics_addr, d->cfg.metrics_port);
		return SMIG_EIO;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL ||
	    loop_watch_add(d->loop, info->epoll_fd, EPOLLIN, on_io, d, &m->w) < 0 ||
	    loop_timer_add(d->loop, METRICS_TICK_MS, on_tick, d, &m->t) < 0)
		return SMIG_EIO;
	smig_info("event=metrics_listening addr=%s port=%u", d->cfg.metrics_addr,
		  d->cfg.metrics_port);
	return 0;
}

void metrics_close(struct smigd *d)
{
	struct metrics *m = d->metrics;

	if (m == NULL)
		return;
	loop_watch_del(d->loop, m->w);
	loop_timer_cancel(d->loop, m->t);
	if (m->mhd)
		MHD_stop_daemon(m->mhd); /* closes the listening socket it was given */
	free(m->page);
	free(m);
	d->metrics = NULL;
}
