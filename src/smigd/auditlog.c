/*
 * auditlog.c - smigd's audit log on disk: appends records (libsmig audit.c
 * makes them), fsyncs each, rewrites the signed head after each, writes a
 * signed checkpoint every N records, every T seconds when something was
 * written, and at shutdown; answers audit.show (with --follow) and
 * audit.verify.
 *
 * The log is STATE_DIR/audit.log (or audit.file) and its head the same
 * path with ".head". At start the existing log is verified; damage is
 * logged and recorded as the first new record, and the chain goes on from
 * the last record found, so old damage stays visible to every later
 * verification.
 */
#include "smigd.h"
#include "audit.h"
#include "ctl.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_FILE_MAX ((size_t)256 * 1024 * 1024)
#define AUDIT_SHOW_DEFAULT 100
#define AUDIT_SHOW_MAX 10000

struct auditlog {
	int fd;
	char path[PATH_MAX];
	char head_path[PATH_MAX + 8];
	struct smig_audit_chain chain;
	EVP_PKEY *key; /* the host key (smigd's, not ours to free) */
	struct loop_timer *timer;
	struct ctl_followers followers;
	bool write_failed;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void follow_send(struct smigd *d, const char *line)
{
	json_t *rec = json_loads(line, 0, NULL);

	if (rec)
		ctl_followers_send(d, &d->audit->followers, rec);
	json_decref(rec);
}

/* Signs the head again; 0 once it is on disk. */
static int head_write(struct auditlog *a)
{
	char *head = NULL;
	int rc = smig_audit_head(&a->chain, a->key, &head);

	if (rc == 0)
		rc = smig_file_write_atomic(a->head_path, head, strlen(head), 0600);
	free(head);
	return rc;
}

/* Appends a sealed line, fsyncs it, then re-signs the head. */
static void append(struct smigd *d, char *line)
{
	struct auditlog *a = d->audit;

	if (smig_file_write_all(a->fd, line, strlen(line)) < 0 || fdatasync(a->fd) < 0 ||
	    head_write(a) < 0) {
		if (!a->write_failed)
			smig_err("event=audit_write_failed path=%s reason=\"%s\"", a->path,
				 strerror(errno));
		a->write_failed = true;
	} else {
		a->write_failed = false;
	}
	follow_send(d, line);
	free(line);
}


bool audit_writable(struct smigd *d)
{
	struct auditlog *a = d->audit;

	if (a == NULL || a->fd < 0)
		return false;
	/* After a failure, the next question tries again: sync the log, re-sign the head. */
	if (a->write_failed && fdatasync(a->fd) == 0 && head_write(a) == 0) {
		smig_info("event=audit_writable path=%s", a->path);
		a->write_failed = false;
	}
	return !a->write_failed;
}

static void checkpoint(struct smigd *d)
{
	struct auditlog *a = d->audit;
	char *line;

	if (smig_audit_checkpoint(&a->chain, d->cfg.host, now_ms(), a->key, &line) == 0)
		append(d, line);
}

void audit_write(struct smigd *d, const char *actor, const char *action, const char *target,
		 const char *decision, const char *rule, const char *outcome,
		 const char *detail)
{
	struct auditlog *a = d->audit;
	struct smig_audit_entry e = {
		.time_ms = now_ms(), .host = d->cfg.host, .actor = actor, .action = action,
		.target = target, .decision = decision, .rule = rule, .outcome = outcome,
		.detail = detail,
	};
	char *line;

	if (a == NULL)
		return;
	if (smig_audit_record(&a->chain, &e, &line) < 0) {
		smig_err("event=audit_record_failed action=%s", action);
		return;
	}
	append(d, line);
	if (a->chain.since_checkpoint >= (uint64_t)d->cfg.audit_checkpoint_records)
		checkpoint(d);
}

static void checkpoint_tick(void *arg)
{
	struct smigd *d = arg;
	struct auditlog *a = d->audit;

	a->timer = NULL;
	if (a->chain.since_checkpoint > 0)
		checkpoint(d);
	(void)loop_timer_add(d->loop, (uint64_t)d->cfg.audit_checkpoint_interval_s * 1000,
			     checkpoint_tick, d, &a->timer);
}

/* Reads the log and its head (either may be missing); *log is never NULL on 0. */
static int read_log(const struct auditlog *a, char **log, size_t *len, char **head,
		    size_t *hlen, char *err, size_t errlen)
{
	int rc = smig_file_read(a->path, AUDIT_FILE_MAX, log, len, err, errlen);

	if (rc == SMIG_ENOENT) {
		*log = strdup("");
		*len = 0;
		rc = *log ? 0 : SMIG_ENOMEM;
	}
	SMIG_GUARD(rc);
	if (smig_file_read(a->head_path, 4096, head, hlen, err, errlen) < 0)
		*head = NULL;
	return 0;
}

/* One line naming the first finding of each kind. */
static void damage_summary(const struct smig_audit_report *rep, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (int k = 0; k < SMIG_AUDIT_DAMAGE_KINDS && off < len; k++) {
		if (!rep->kind[k].found)
			continue;
		off += (size_t)snprintf(out + off, len - off, "%s%s: %s", off ? "; " : "",
					smig_audit_damage_name((enum smig_audit_damage)k),
					rep->kind[k].msg);
	}
}

/* A crash can leave half a line at the end: cut it so appends stay lines. */
static int cut_torn_tail(struct auditlog *a, const char *log, size_t len, size_t *cut)
{
	size_t keep = len;

	*cut = 0;
	while (keep > 0 && log[keep - 1] != '\n')
		keep--;
	if (keep == len)
		return 0;
	*cut = len - keep;
	return truncate(a->path, (off_t)keep) == 0 ? 0 : SMIG_EIO;
}

/* Verifies what is on disk, cuts a torn tail and sets the chain to go on. */
static int audit_examine(struct smigd *d, char *damage, size_t dlen, size_t *cut)
{
	struct auditlog *a = d->audit;
	struct smig_audit_report rep;
	char *log, *head = NULL;
	size_t len, hlen = 0;
	char err[512];
	int rc;

	damage[0] = '\0';
	rc = read_log(a, &log, &len, &head, &hlen, err, sizeof(err));
	if (rc < 0) {
		smig_err("event=audit_open_failed reason=\"%s\"", err);
		return rc;
	}
	rc = cut_torn_tail(a, log, len, cut);
	len -= *cut;
	if (rc == 0 && (len > 0 || head)) {
		rc = smig_audit_verify(log, len, head, hlen, a->key, &rep);
		if (rc == 0 && rep.damaged)
			damage_summary(&rep, damage, dlen);
	}
	if (rc == 0 && smig_audit_resume(log, len, &a->chain, err, sizeof(err)) < 0)
		smig_warn("event=audit_resume reason=\"%s\"", err);
	free(log);
	free(head);
	return rc;
}

static int audit_paths(struct smigd *d, struct auditlog *a)
{
	int n;

	if (d->cfg.audit_file[0])
		n = snprintf(a->path, sizeof(a->path), "%s", d->cfg.audit_file);
	else
		n = snprintf(a->path, sizeof(a->path), "%s/audit.log", d->cfg.state_dir);
	SMIG_ENSURE(n > 0 && (size_t)n < sizeof(a->path), SMIG_ECONFIG);
	snprintf(a->head_path, sizeof(a->head_path), "%s.head", a->path);
	return 0;
}

int audit_open(struct smigd *d)
{
	struct auditlog *a = calloc(1, sizeof(*a));
	char damage[1024], detail[64];
	size_t cut = 0;

	SMIG_ENSURE(a != NULL, SMIG_ENOMEM);
	a->fd = -1;
	d->audit = a;
	SMIG_GUARD(audit_paths(d, a));
	a->key = d->host_key;
	SMIG_GUARD(audit_examine(d, damage, sizeof(damage), &cut));
	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		smig_err("event=audit_open_failed path=%s reason=\"%s\"", a->path, strerror(errno));
		return SMIG_EIO;
	}
	smig_info("event=audit_open path=%s seq=%llu", a->path, (unsigned long long)a->chain.seq);
	if (cut) {
		snprintf(detail, sizeof(detail), "cut %zu bytes of a torn last line", cut);
		smig_warn("event=audit_repaired path=%s detail=\"%s\"", a->path, detail);
		audit_write(d, "smigd", "audit.repair", "log", "none", "-", "ok", detail);
	}
	if (damage[0]) {
		smig_err("event=audit_damaged path=%s detail=\"%s\"", a->path, damage);
		audit_write(d, "smigd", "audit.damage", "log", "none", "-", "found", damage);
	}
	audit_write(d, "smigd", "smigd.start", d->cfg.host, "none", "-", "ok",
		    "version=" SMIG_VERSION);
	return loop_timer_add(d->loop, (uint64_t)d->cfg.audit_checkpoint_interval_s * 1000,
			      checkpoint_tick, d, &a->timer);
}

void audit_close(struct smigd *d)
{
	struct auditlog *a = d->audit;

	if (a == NULL)
		return;
	if (a->fd >= 0) {
		audit_write(d, "smigd", "smigd.stop", d->cfg.host, "none", "-", "ok", NULL);
		checkpoint(d);
		close(a->fd);
	}
	ctl_followers_end(d, &a->followers);
	if (d->loop)
		loop_timer_cancel(d->loop, a->timer);
	free(a);
	d->audit = NULL;
}

/* The last n lines of the log as records (n == 0: all). */
static json_t *last_records(const char *log, size_t len, size_t n)
{
	json_t *arr = json_array();
	size_t start = len, count = 0;

	while (start > 0 && (n == 0 || count < n)) {
		size_t s = start - 1;

		while (s > 0 && log[s - 1] != '\n')
			s--;
		if (start - s > 1)
			count++;
		start = s;
	}
	for (size_t off = start; off < len;) {
		const char *nl = memchr(log + off, '\n', len - off);
		size_t l = nl ? (size_t)(nl - (log + off)) : len - off;
		json_t *rec = json_loadb(log + off, l, 0, NULL);

		if (l > 0)
			json_array_append_new(arr, rec ? rec : json_pack("{s:s#}", "unreadable",
								     log + off, (int)l));
		off += l + 1;
	}
	return arr;
}

void audit_cmd_show(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "last", "follow", NULL };
	const json_t *last = json_object_get(args, "last");
	struct auditlog *a = d->audit;
	char *log, *head = NULL, err[512];
	size_t len, hlen;
	json_t *recs;

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0 ||
	    (last && (!json_is_integer(last) || json_integer_value(last) < 0 ||
		      json_integer_value(last) > AUDIT_SHOW_MAX))) {
		ctl_reply_err(d, ref, "bad_request",
			      "audit.show takes last (0-%d, 0 for all) and follow", AUDIT_SHOW_MAX);
		return;
	}
	if (read_log(a, &log, &len, &head, &hlen, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "error", "%s", err);
		return;
	}
	recs = last_records(log, len, last ? (size_t)json_integer_value(last)
					   : AUDIT_SHOW_DEFAULT);
	free(log);
	free(head);
	if (!json_is_true(json_object_get(args, "follow"))) {
		ctl_reply_ok(d, ref, json_pack("{s:s,s:o}", "file", a->path, "records", recs));
		return;
	}
	ctl_follow(d, &a->followers, ref, recs);
	json_decref(recs);
}

void audit_cmd_verify(struct smigd *d, struct ctl_ref *ref)
{
	struct auditlog *a = d->audit;
	struct smig_audit_report rep;
	char *log, *head = NULL, err[512];
	size_t len, hlen = 0;
	json_t *out;
	int rc;

	if (read_log(a, &log, &len, &head, &hlen, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "error", "%s", err);
		return;
	}
	rc = smig_audit_verify(log, len, head, hlen, a->key, &rep);
	free(log);
	free(head);
	if (rc < 0) {
		ctl_reply_err(d, ref, "error", "%s: %s", a->path, smig_strerror(rc));
		return;
	}
	out = smig_audit_report_json(&rep);
	json_object_set_new(out, "file", json_string(a->path));
	ctl_reply_ok(d, ref, out);
}
