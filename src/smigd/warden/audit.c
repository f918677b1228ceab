/*
 * audit.c - the audit log on disk, written only by the warden: each record
 * (libsmig audit.c makes it) appended and fsynced, the signed head
 * rewritten after each, a signed checkpoint every N records, every T
 * seconds when something was written, and at shutdown. The worker asks
 * for records (privmsg AUDIT) and reads the files for audit show and
 * verify: they are root's with the worker's group, mode 0640, so it can
 * read what it cannot change.
 *
 * The log is STATE_DIR/audit.log (or audit.file) and its head the same
 * path with ".head". At start the existing log is verified; damage is
 * logged and recorded as the first new record, and the chain goes on from
 * the last record found, so old damage stays visible to every later
 * verification.
 *
 * Past audit.max_kib the log rotates: a signed checkpoint ends it, it
 * becomes audit.log.1 (audit.log.1 becomes .2, and so on; past
 * audit.keep the oldest goes), and the new audit.log begins with an
 * audit.rotate record whose prev is the old file's last hash, so the
 * chain runs on across files and smig audit verify follows it.
 */
#include "warden/wd_int.h"
#include "audit.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUDIT_FILE_MAX ((size_t)256 * 1024 * 1024)

struct wd_audit {
	int fd;
	off_t size; /* of the current file */
	bool from_rotated; /* at start: audit.log was missing or empty, audit.log.1 was not */
	char path[PATH_MAX];
	char head_path[PATH_MAX + 8];
	struct smig_audit_chain chain;
	struct loop_timer *timer;
	bool write_failed;
};

/* Signs the head again; 0 once it is on disk, readable by the worker. */
static int head_write(struct warden *w)
{
	struct wd_audit *a = w->audit;
	char *head = NULL;
	int rc = smig_audit_head(&a->chain, w->host_key, &head);

	if (rc == 0)
		rc = smig_file_write_atomic(a->head_path, head, strlen(head), 0640);
	if (rc == 0 && chown(a->head_path, 0, w->worker_gid) < 0)
		rc = SMIG_EIO;
	free(head);
	return rc;
}

/* Appends a sealed line, fsyncs it, then re-signs the head; false if any of it failed. */
static bool append(struct warden *w, const char *line)
{
	struct wd_audit *a = w->audit;

	if (smig_file_write_all(a->fd, line, strlen(line)) < 0 || fdatasync(a->fd) < 0 ||
	    (a->size += (off_t)strlen(line), head_write(w) < 0)) {
		if (!a->write_failed)
			smig_err("event=audit_write_failed path=%s reason=\"%s\"", a->path,
				 strerror(errno));
		a->write_failed = true;
		return false;
	}
	a->write_failed = false;
	return true;
}

bool wd_audit_writable(struct warden *w)
{
	struct wd_audit *a = w->audit;

	if (a == NULL || a->fd < 0)
		return false;
	/* After a failure, the next question tries again: sync the log, re-sign the head. */
	if (a->write_failed && fdatasync(a->fd) == 0 && head_write(w) == 0) {
		smig_info("event=audit_writable path=%s", a->path);
		a->write_failed = false;
	}
	return !a->write_failed;
}

static void checkpoint(struct warden *w)
{
	struct wd_audit *a = w->audit;
	char *line;

	if (smig_audit_checkpoint(&a->chain, w->cfg.host, loop_wall_ms(), w->host_key, &line) == 0) {
		(void)append(w, line);
		free(line);
	}
}

static int audit_open_file(struct warden *w)
{
	struct wd_audit *a = w->audit;
	struct stat st;

	a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
		     0640);
	if (a->fd >= 0 && (fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(a->fd); /* a FIFO, a device: never chown or write one */
		a->fd = -1;
		errno = EINVAL;
	}
	if (a->fd < 0 || fchown(a->fd, 0, w->worker_gid) < 0 || fchmod(a->fd, 0640) < 0) {
		smig_err("event=audit_open_failed path=%s reason=\"%s\"", a->path, strerror(errno));
		return SMIG_EIO;
	}
	a->size = st.st_size;
	return 0;
}

/* Seals one record onto the chain and appends it; *out gets the line when out is set. */
static bool record(struct warden *w, const char *actor, const char *action, const char *target,
		   const char *decision, const char *rule, const char *outcome,
		   const char *detail, char **out)
{
	struct wd_audit *a = w->audit;
	struct smig_audit_entry e = {
		.time_ms = loop_wall_ms(), .host = w->cfg.host, .actor = actor, .action = action,
		.target = target, .decision = decision, .rule = rule, .outcome = outcome,
		.detail = detail,
	};
	char *line;
	bool ok;

	if (out)
		*out = NULL;
	if (a == NULL || a->fd < 0)
		return false;
	if (smig_audit_record(&a->chain, &e, &line) < 0) {
		smig_err("event=audit_record_failed action=%s", action);
		return false;
	}
	ok = append(w, line);
	if (out)
		*out = line;
	else
		free(line);
	return ok;
}

bool wd_audit_rekey(struct warden *w, EVP_PKEY *old_key, EVP_PKEY *new_key)
{
	struct wd_audit *a = w->audit;
	struct smig_audit_chain was;
	char *lines;
	bool ok;

	if (a == NULL || a->fd < 0 || a->write_failed)
		return false;
	was = a->chain;
	if (smig_audit_rekey(&a->chain, w->cfg.host, loop_wall_ms(), old_key, new_key, &lines) < 0) {
		a->chain = was;
		return false;
	}
	ok = append(w, lines);
	free(lines);
	if (!ok)
		a->chain = was;
	return ok;
}

/* The seq of the first record of the oldest rotated file kept (1 when none can say). */
static uint64_t oldest_kept(const struct warden *w)
{
	char name[PATH_MAX + 16], line[8192];
	uint64_t seq = 1;

	for (int k = w->cfg.audit_keep; k >= 1; k--) {
		FILE *f;
		json_t *o;

		smig_file_rotated_name(w->audit->path, k, name, sizeof(name));
		if ((f = fopen(name, "re")) == NULL)
			continue;
		if (fgets(line, sizeof(line), f) && (o = json_loads(line, 0, NULL))) {
			if (json_integer_value(json_object_get(o, "seq")) > 0)
				seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
			json_decref(o);
		}
		fclose(f);
		break;
	}
	return seq;
}

/*
 * Ends the current file with a checkpoint and starts the next: the names
 * shift up by one (the oldest past audit.keep goes), and the new file's
 * first record says which file and seq it continues.
 */
static void rotate(struct warden *w)
{
	struct wd_audit *a = w->audit;
	char detail[128], target[64], err[PATH_MAX + 64];
	uint64_t last, kept;

	checkpoint(w);
	last = a->chain.seq;
	if (smig_file_shift(a->path, w->cfg.audit_keep, err, sizeof(err)) < 0)
		smig_warn("event=audit_rotate_failed reason=\"%s\"", err);
	close(a->fd);
	a->fd = -1;
	if (audit_open_file(w) < 0) {
		a->write_failed = true;
		return;
	}
	smig_info("event=audit_rotated path=%s continues=%s.1 seq=%llu", a->path, a->path,
		  (unsigned long long)last);
	snprintf(detail, sizeof(detail), "continues %s.1, which ends at seq %llu",
		 strrchr(a->path, '/') ? strrchr(a->path, '/') + 1 : a->path,
		 (unsigned long long)last);
	/* where the kept files begin: a verifier finds any of them taken away */
	kept = oldest_kept(w);
	snprintf(target, sizeof(target), "log keep:%d from:%llu", w->cfg.audit_keep,
		 (unsigned long long)kept);
	(void)record(w, "smigd", SMIG_AUDIT_ROTATE, target, "none", "-", "ok", detail, NULL);
}

bool wd_audit_write(struct warden *w, const char *actor, const char *action,
		    const char *target, const char *decision, const char *rule,
		    const char *outcome, const char *detail, char **out)
{
	struct wd_audit *a = w->audit;
	bool ok = record(w, actor, action, target, decision, rule, outcome, detail, out);

	if (a == NULL || a->fd < 0)
		return ok;
	if (a->chain.since_checkpoint >= (uint64_t)w->cfg.audit_checkpoint_records)
		checkpoint(w);
	if (a->size >= (off_t)w->cfg.audit_max_kib * 1024)
		rotate(w);
	return ok;
}

static void checkpoint_tick(void *arg)
{
	struct warden *w = arg;
	struct wd_audit *a = w->audit;

	a->timer = NULL;
	if (a->chain.since_checkpoint > 0)
		checkpoint(w);
	(void)loop_timer_add(w->loop, (uint64_t)w->cfg.audit_checkpoint_interval_s * 1000,
			     checkpoint_tick, w, &a->timer);
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

/*
 * A crash between rotation's rename and the new file's first record leaves
 * no (or an empty) audit.log: the chain goes on from audit.log.1, which is
 * what examine verifies then (against the head, so an audit.log deleted
 * with records in it shows as truncated). True if audit.log.1 has records.
 */
static bool read_rotated(struct warden *w, char **log, size_t *len)
{
	struct wd_audit *a = w->audit;
	char prev[PATH_MAX + 16], err[256];

	smig_file_rotated_name(a->path, 1, prev, sizeof(prev));
	if (smig_file_read(prev, AUDIT_FILE_MAX, log, len, err, sizeof(err)) < 0)
		return false;
	if (*len > 0)
		return true;
	free(*log);
	*log = NULL;
	return false;
}

/* Verifies what is on disk, cuts a torn tail and sets the chain to go on. */
static int examine(struct warden *w, char *damage, size_t dlen, size_t *cut)
{
	struct wd_audit *a = w->audit;
	struct smig_audit_report rep;
	char *log = NULL, *head = NULL;
	size_t len = 0, hlen = 0, keep;
	char err[512];
	int rc;

	damage[0] = '\0';
	*cut = 0;
	a->from_rotated = false;
	rc = smig_file_read(a->path, AUDIT_FILE_MAX, &log, &len, err, sizeof(err));
	if (rc == SMIG_ENOENT || (rc == 0 && len == 0)) {
		free(log);
		log = NULL;
		a->from_rotated = read_rotated(w, &log, &len);
		rc = a->from_rotated ? 0 : SMIG_ENOENT;
	}
	if (rc == SMIG_ENOENT) {
		log = strdup("");
		len = 0;
		rc = log ? 0 : SMIG_ENOMEM;
	}
	if (rc < 0) {
		smig_err("event=audit_open_failed reason=\"%s\"", err);
		return rc;
	}
	if (smig_file_read(a->head_path, 4096, &head, &hlen, err, sizeof(err)) < 0)
		head = NULL;
	/* a crash can leave half a line at the end: cut it so appends stay lines */
	for (keep = len; !a->from_rotated && keep > 0 && log[keep - 1] != '\n'; keep--)
		;
	if (keep != len) {
		*cut = len - keep;
		len = keep;
		rc = truncate(a->path, (off_t)keep) == 0 ? 0 : SMIG_EIO;
	}
	if (rc == 0 && (len > 0 || head)) {
		rc = smig_audit_verify(log, len, head, hlen, w->host_key, &rep);
		if (rc == 0 && rep.damaged)
			damage_summary(&rep, damage, dlen);
	}
	if (rc == 0 && len > 0 && smig_audit_resume(log, len, &a->chain, err, sizeof(err)) < 0)
		smig_warn("event=audit_resume reason=\"%s\"", err);
	if (a->from_rotated)
		smig_warn("event=audit_resume_rotated path=%s.1 seq=%llu", a->path,
			  (unsigned long long)a->chain.seq);
	free(log);
	free(head);
	return rc;
}

int wd_audit_open(struct warden *w)
{
	struct wd_audit *a = calloc(1, sizeof(*a));
	char damage[1024], detail[64], err[PATH_MAX + 64];
	size_t cut = 0;
	int n;

	SMIG_ENSURE(a != NULL, SMIG_ENOMEM);
	a->fd = -1;
	w->audit = a;
	if (w->cfg.audit_file[0])
		n = snprintf(a->path, sizeof(a->path), "%s", w->cfg.audit_file);
	else
		n = snprintf(a->path, sizeof(a->path), "%s/audit.log", w->cfg.state_dir);
	SMIG_ENSURE(n > 0 && (size_t)n < sizeof(a->path), SMIG_ECONFIG);
	snprintf(a->head_path, sizeof(a->head_path), "%s.head", a->path);
	/* audit.keep lowered since: fewer files kept */
	if (smig_file_drop_rotated(a->path, w->cfg.audit_keep + 1, err, sizeof(err)) < 0)
		smig_warn("event=audit_rotate_failed reason=\"%s\"", err);
	SMIG_GUARD(examine(w, damage, sizeof(damage), &cut));
	SMIG_GUARD(audit_open_file(w));
	if (a->from_rotated) /* the new file begins as rotation begins one */
		(void)record(w, "smigd", SMIG_AUDIT_ROTATE, "log", "none", "-", "ok",
			     "continues audit.log.1 (the rotation was cut short)", NULL);
	smig_info("event=audit_open path=%s seq=%llu", a->path, (unsigned long long)a->chain.seq);
	if (cut) {
		snprintf(detail, sizeof(detail), "cut %zu bytes of a torn last line", cut);
		smig_warn("event=audit_repaired path=%s detail=\"%s\"", a->path, detail);
		(void)wd_audit_write(w, "smigd", "audit.repair", "log", "none", "-", "ok", detail,
				     NULL);
	}
	if (damage[0]) {
		smig_err("event=audit_damaged path=%s detail=\"%s\"", a->path, damage);
		(void)wd_audit_write(w, "smigd", "audit.damage", "log", "none", "-", "found", damage,
				     NULL);
	}
	(void)wd_audit_write(w, "smigd", "smigd.start", w->cfg.host, "none", "-", "ok",
			     "version=" SMIG_VERSION, NULL);
	return loop_timer_add(w->loop, (uint64_t)w->cfg.audit_checkpoint_interval_s * 1000,
			      checkpoint_tick, w, &a->timer);
}

void wd_audit_close(struct warden *w)
{
	struct wd_audit *a = w->audit;

	if (a == NULL)
		return;
	if (a->fd >= 0) {
		(void)wd_audit_write(w, "smigd", "smigd.stop", w->cfg.host, "none", "-", "ok", NULL,
				     NULL);
		checkpoint(w);
		close(a->fd);
	}
	if (w->loop)
		loop_timer_cancel(w->loop, a->timer);
	free(a);
	w->audit = NULL;
}
