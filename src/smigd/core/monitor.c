/*
 * monitor.c - smigd's security monitor: one event type for everything that
 * matters on the wire, the firewall at accept, and the IDS that turns
 * repeated failures into timed bans (libsmig ids.c decides).
 *
 * Every event goes to the log (and syslog), to the last-events ring that
 * `smig events` reads and follows, and, unless it is a plain accepted
 * connection, to the audit log; a burst of the same event from one
 * address is written to the audit log once a second with the count of the
 * ones folded into it, so a flood cannot turn into an fsync storm. Bans
 * are kept in STATE_DIR/bans.json so a restart does not lift them.
 */
#include "core/smigd.h"
#include "core/priv.h"
#include "ctl.h"
#include "error.h"
#include "file.h"
#include "log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING 1024
#define BANS_MAX 1024
#define PATHS 64	     /* hosts whose failed records are tracked */
#define PATH_HIST 8	     /* failures kept per host (a ring) */
#define PATH_COUNT 3	     /* this many failed records with one host ... */
#define PATH_WINDOW_MS 300000 /* ... within this long raise a path alarm */

struct sec_event {
	uint64_t seq;
	int64_t time_ms;
	enum smig_sec_kind kind;
	char addr[SMIG_IDS_ADDR_MAX];
	char host[SMIG_NAME_MAX + 1];
	char detail[256];
};

/*
 * Records that failed authentication on sessions with one host. Anyone on
 * the path can cause them, so they never ban: they are counted per host
 * and, past PATH_COUNT within PATH_WINDOW_MS, raise one path alarm (again
 * only once the window has passed without one).
 */
struct path {
	char host[SMIG_NAME_MAX + 1];
	char addr[SMIG_IDS_ADDR_MAX];
	int64_t times[PATH_HIST];
	unsigned head;
	uint64_t total;
	int64_t last_ms, alarm_ms;
};

struct monitor {
	struct sec_event ring[RING];
	size_t n, head;
	uint64_t seq;
	struct ctl_followers followers;
	struct smig_ids *ids;
	char bans_path[PATH_MAX];
	uint64_t counts[SMIG_SEC_KINDS];
	struct path paths[PATHS];
};

static json_t *event_json(const struct sec_event *e)
{
	return json_pack("{s:I,s:I,s:s,s:s,s:s,s:s}", "seq", (json_int_t)e->seq, "time_ms",
			 (json_int_t)e->time_ms, "kind", smig_sec_kind_name(e->kind), "addr",
			 e->addr, "host", e->host, "detail", e->detail);
}

/*
 * What anyone can cause again and again without being a host of the
 * cluster (a refused connection, a failed handshake, a stranger's
 * certificate, a record damaged on the path) or a local user's refusal.
 * Everything else (an authenticated peer's violation, a hostile spec, an
 * attestation failure, a ban, a path alarm) is audited in full, each time.
 */
static bool foldable(enum smig_sec_kind k)
{
	return k == SMIG_SEC_CONN_REFUSED || k == SMIG_SEC_TLS_FAILURE ||
	       k == SMIG_SEC_UNKNOWN_PEER || k == SMIG_SEC_RECORD_AUTH_FAILURE ||
	       k == SMIG_SEC_POLICY_DENIAL;
}

/*
 * Audits e; the foldable kinds folded per (kind, address): a flood of
 * failed handshakes writes a count, not a line each (auditlog.c).
 */
static void audit_folded(struct smigd *d, const struct sec_event *e)
{
	char actor[SMIG_IDS_ADDR_MAX + 8], action[48], key[SMIG_IDS_ADDR_MAX + 64];

	snprintf(actor, sizeof(actor), "%s%s", e->host[0] ? "peer:" : "addr:",
		 e->host[0] ? e->host : e->addr);
	snprintf(action, sizeof(action), "security.%s", smig_sec_kind_name(e->kind));
	if (!foldable(e->kind)) {
		audit_write(d, actor, action, e->addr, "none", "-", "observed", e->detail);
		return;
	}
	snprintf(key, sizeof(key), "sec|%s|%s", action, e->addr);
	audit_write_folded(d, key, actor, action, e->addr, "none", "-", "observed", e->detail);
}

static void bans_save(struct smigd *d)
{
	struct monitor *m = d->monitor;
	char *text = NULL;

	if (smig_ids_bans_dump(m->ids, loop_wall_ms(), &text) < 0 ||
	    smig_file_write_atomic(m->bans_path, text, strlen(text), 0600) < 0)
		smig_err("event=bans_save_failed path=%s", m->bans_path);
	free(text);
}

static bool never_ban(const struct smigd *d, const char *addr)
{
	for (size_t i = 0; i < d->cfg.nnever_ban; i++)
		if (strcmp(d->cfg.never_ban[i], addr) == 0)
			return true;
	return false;
}

/* Keeps, logs, sends to followers and audits one event; returns it. */
static const struct sec_event *record(struct smigd *d, enum smig_sec_kind kind, const char *addr,
				      const char *host, const char *detail)
{
	struct monitor *m = d->monitor;
	struct sec_event *e = &m->ring[m->head];

	memset(e, 0, sizeof(*e));
	e->seq = ++m->seq;
	e->time_ms = loop_wall_ms();
	e->kind = kind;
	snprintf(e->addr, sizeof(e->addr), "%s", addr ? addr : "");
	snprintf(e->host, sizeof(e->host), "%s", host ? host : "");
	snprintf(e->detail, sizeof(e->detail), "%s", detail);
	m->head = (m->head + 1) % RING;
	m->n += m->n < RING;
	m->counts[kind]++;
	if (kind == SMIG_SEC_CONN_ACCEPTED)
		smig_debug("event=security kind=%s addr=%s", smig_sec_kind_name(kind), e->addr);
	else if (kind == SMIG_SEC_PATH_ALARM)
		smig_err("event=security kind=%s addr=%s host=%s detail=\"%s\"",
			 smig_sec_kind_name(kind), e->addr, e->host[0] ? e->host : "-", e->detail);
	else
		smig_warn("event=security kind=%s addr=%s host=%s detail=\"%s\"",
			  smig_sec_kind_name(kind), e->addr, e->host[0] ? e->host : "-", e->detail);
	if (m->followers.head) {
		json_t *ev = event_json(e);

		ctl_followers_send(d, &m->followers, ev);
		json_decref(ev);
	}
	if (kind != SMIG_SEC_CONN_ACCEPTED)
		audit_folded(d, e);
	return e;
}

/* A ban (ms > 0) or an unban (0) in nftables too (firewall.nftables): the warden's job. */
static void kernel_ban(struct smigd *d, const char *addr, int64_t ms)
{
	struct smig_pm r;

	if (!d->cfg.nftables || d->priv == NULL)
		return;
	if (ms > 0)
		(void)priv_call(d->priv, &r, SMIG_PM_BAN, addr, (uint64_t)ms);
	else
		(void)priv_call(d->priv, &r, SMIG_PM_UNBAN, addr);
}

/* The path entry of e's host (or address), made if need be (the stalest goes). */
static struct path *path_of(struct monitor *m, const struct sec_event *e)
{
	const char *key = e->host[0] ? e->host : e->addr;
	struct path *p = NULL, *oldest = &m->paths[0];

	for (size_t i = 0; i < PATHS && p == NULL; i++) {
		const char *k = m->paths[i].host[0] ? m->paths[i].host : m->paths[i].addr;

		if (m->paths[i].last_ms && strcmp(k, key) == 0)
			p = &m->paths[i];
		else if (m->paths[i].last_ms < oldest->last_ms)
			oldest = &m->paths[i];
	}
	if (p == NULL) {
		p = oldest;
		memset(p, 0, sizeof(*p));
		snprintf(p->host, sizeof(p->host), "%s", e->host);
	}
	if (e->addr[0])
		snprintf(p->addr, sizeof(p->addr), "%s", e->addr);
	return p;
}

static unsigned path_recent(const struct path *p, int64_t now_ms)
{
	unsigned n = 0;

	for (size_t i = 0; i < PATH_HIST; i++)
		n += p->times[i] && p->times[i] > now_ms - PATH_WINDOW_MS;
	return n;
}

/* An alarm raised within the window still stands (and is not raised again). */
static bool path_alarm_stands(const struct path *p, int64_t now_ms)
{
	return p->alarm_ms && now_ms - p->alarm_ms < PATH_WINDOW_MS;
}

/* A record failed on a session with e's host: counted, and alarmed past the threshold. */
static void path_note(struct smigd *d, const struct sec_event *e)
{
	struct path *p = path_of(d->monitor, e);
	char detail[200];
	unsigned n;

	p->times[p->head] = e->time_ms;
	p->head = (p->head + 1) % PATH_HIST;
	p->total++;
	p->last_ms = e->time_ms;
	n = path_recent(p, e->time_ms);
	if (n < PATH_COUNT || path_alarm_stands(p, e->time_ms))
		return;
	p->alarm_ms = e->time_ms;
	snprintf(detail, sizeof(detail),
		 "%u records failed authentication within %d s on sessions with this host: "
		 "something on the path damages traffic; no ban (the host did not cause it)",
		 n, PATH_WINDOW_MS / 1000);
	(void)record(d, SMIG_SEC_PATH_ALARM, e->addr, e->host, detail);
}

/*
 * Failures count towards the IDS rules, a ban is an event of its own; a
 * failed record counts towards a path alarm instead.
 */
static void ids_feed(struct smigd *d, const struct sec_event *e)
{
	struct monitor *m = d->monitor;
	int64_t ban_ms = 0;
	char detail[128];

	if (e->kind == SMIG_SEC_RECORD_AUTH_FAILURE)
		path_note(d, e);
	if (!smig_sec_kind_bannable(e->kind) || e->addr[0] == '\0' || never_ban(d, e->addr))
		return;
	if (!smig_ids_event(m->ids, e->addr, e->kind, e->time_ms, &ban_ms, NULL))
		return;
	bans_save(d);
	kernel_ban(d, e->addr, ban_ms);
	snprintf(detail, sizeof(detail), "banned for %lld s after repeated %s",
		 (long long)(ban_ms / 1000), smig_sec_kind_name(e->kind));
	(void)record(d, SMIG_SEC_BAN, e->addr, e->host, detail);
}

void sec_event(struct smigd *d, enum smig_sec_kind kind, const char *addr, const char *host,
	       const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	if (d->monitor == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ids_feed(d, record(d, kind, addr, host, detail));
}

static void bans_load(struct smigd *d)
{
	struct monitor *m = d->monitor;
	char *text = NULL, err[256];
	size_t len;
	int n;

	if (smig_file_read(m->bans_path, (size_t)1 << 20, &text, &len, err, sizeof(err)) < 0)
		return;
	n = smig_ids_bans_load(m->ids, text, len, loop_wall_ms());
	free(text);
	if (n < 0)
		smig_warn("event=bans_ignored path=%s reason=\"not a list of bans\"", m->bans_path);
	else if (n > 0)
		smig_info("event=bans_restored path=%s bans=%d", m->bans_path, n);
}

int monitor_init(struct smigd *d)
{
	const struct smig_ids_limits lim = { .rate_per_s = d->cfg.conn_rate,
					     .burst = d->cfg.conn_burst };
	struct monitor *m = calloc(1, sizeof(*m));
	size_t n = 0;
	int rc;

	SMIG_ENSURE(m != NULL, SMIG_ENOMEM);
	d->monitor = m;
	if (d->cfg.nids_rules)
		rc = smig_ids_new(d->cfg.ids_rules, d->cfg.nids_rules, &lim, &m->ids);
	else {
		const struct smig_ids_rule *rules = smig_ids_default_rules(&n);

		rc = smig_ids_new(rules, n, &lim, &m->ids);
	}
	SMIG_GUARD(rc);
	snprintf(m->bans_path, sizeof(m->bans_path), "%s/worker/bans.json", d->cfg.state_dir);
	bans_load(d);
	if (d->cfg.nftables) { /* the warden made its table afresh: the bans in force go in again */
		struct smig_ids_ban_info b[64];
		size_t nb = smig_ids_bans(m->ids, loop_wall_ms(), b, ARRAY_LEN(b));

		for (size_t i = 0; i < nb; i++)
			kernel_ban(d, b[i].addr, b[i].until_ms - loop_wall_ms());
	}
	return 0;
}

void monitor_free(struct smigd *d)
{
	struct monitor *m = d->monitor;

	if (m == NULL)
		return;
	ctl_followers_end(d, &m->followers);
	smig_ids_free(m->ids);
	free(m);
	d->monitor = NULL;
}

bool monitor_admit(struct smigd *d, const char *ip, size_t pending, size_t total)
{
	enum smig_ids_admit a;

	if (d->cfg.hosts_only && smig_hosts_by_addr(smigd_hosts(d), ip) == NULL) {
		sec_event(d, SMIG_SEC_CONN_REFUSED, ip, NULL, "not an address of the host table");
		return false;
	}
	if (never_ban(d, ip))
		return true;
	if (pending >= (size_t)d->cfg.pending_per_source) {
		sec_event(d, SMIG_SEC_CONN_REFUSED, ip, NULL,
			  "%d connections from it are still unauthenticated",
			  d->cfg.pending_per_source);
		return false;
	}
	if (total >= (size_t)d->cfg.conns_per_source) {
		sec_event(d, SMIG_SEC_CONN_REFUSED, ip, NULL,
			  "it holds %d connections already (firewall.conns_per_source)",
			  d->cfg.conns_per_source);
		return false;
	}
	a = smig_ids_admit(d->monitor->ids, ip, loop_wall_ms());
	if (a == SMIG_ADMIT_OK)
		return true;
	sec_event(d, SMIG_SEC_CONN_REFUSED, ip, NULL, "%s",
		  a == SMIG_ADMIT_BANNED ? "banned" : "over its connection rate");
	return false;
}

json_t *monitor_events_json(struct smigd *d, size_t want)
{
	struct monitor *m = d->monitor;
	json_t *arr = json_array();

	for (size_t i = m->n > want && want ? m->n - want : 0; arr && i < m->n; i++)
		json_array_append_new(arr, event_json(&m->ring[(m->head + RING - m->n + i) % RING]));
	return arr;
}

void monitor_follow(struct smigd *d, struct ctl_ref *ref, const json_t *events)
{
	ctl_follow(d, &d->monitor->followers, ref, events);
}

json_t *monitor_status_json(struct smigd *d)
{
	struct monitor *m = d->monitor;
	struct smig_ids_ban_info *b = calloc(BANS_MAX, sizeof(*b));
	json_t *bans = json_array(), *counts = json_object(), *paths = json_array();
	int64_t now = loop_wall_ms();
	size_t n = b ? smig_ids_bans(m->ids, now, b, BANS_MAX) : 0;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(bans, json_pack("{s:s,s:I,s:i}", "addr", b[i].addr,
						      "until_ms", (json_int_t)b[i].until_ms,
						      "strikes", b[i].strikes));
	free(b);
	for (int k = 0; k < SMIG_SEC_KINDS; k++)
		json_object_set_new(counts, smig_sec_kind_name((enum smig_sec_kind)k),
				    json_integer((json_int_t)m->counts[k]));
	for (size_t i = 0; i < PATHS; i++) {
		const struct path *p = &m->paths[i];

		if (p->last_ms)
			json_array_append_new(
				paths, json_pack("{s:s,s:s,s:I,s:i,s:i,s:I,s:b,s:I}", "host",
						 p->host[0] ? p->host : "-", "addr", p->addr,
						 "total", (json_int_t)p->total, "failures",
						 (int)path_recent(p, now), "window_s",
						 PATH_WINDOW_MS / 1000, "last_ms",
						 (json_int_t)p->last_ms, "alarm",
						 path_alarm_stands(p, now),
						 "alarm_ms", (json_int_t)p->alarm_ms));
	}
	return json_pack("{s:o,s:o,s:o,s:I,s:b,s:f,s:f}", "bans", bans, "events", counts,
			 "path_alarms", paths, "sources_tracked",
			 (json_int_t)smig_ids_sources(m->ids), "hosts_only", d->cfg.hosts_only,
			 "conn_per_s", d->cfg.conn_rate, "conn_burst", d->cfg.conn_burst);
}

int monitor_unban(struct smigd *d, const char *addr)
{
	SMIG_GUARD(smig_ids_unban(d->monitor->ids, addr, loop_wall_ms()) < 0 ? SMIG_ENOENT : 0);
	bans_save(d);
	kernel_ban(d, addr, 0);
	sec_event(d, SMIG_SEC_UNBAN, addr, NULL, "lifted by an operator");
	return 0;
}
