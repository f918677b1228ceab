/*
 * auditlog.c - the worker's side of the audit log: a record is written by
 * the warden (privmsg AUDIT), which alone can append to the log, fsync it
 * and sign its head; the line it wrote comes back and goes to `audit show
 * --follow` sessions. audit.show and audit.verify read the files, which
 * are the warden's with the worker's group (mode 0640): readable, not
 * writable, from here.
 *
 * The log is STATE_DIR/audit.log (or audit.file) and its head the same
 * path with ".head" (docs/audit.md).
 */
#include "smigd.h"
#include "audit.h"
#include "ctl.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "priv.h"
#include "sign.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_FILE_MAX ((size_t)256 * 1024 * 1024)
#define AUDIT_SHOW_DEFAULT 100
#define AUDIT_SHOW_MAX 10000

struct auditlog {
	char path[PATH_MAX];
	char head_path[PATH_MAX + 8];
	EVP_PKEY *key; /* the host key (smigd's, not ours to free): checks the signatures */
	struct ctl_followers followers;
};

void audit_write(struct smigd *d, const char *actor, const char *action, const char *target,
		 const char *decision, const char *rule, const char *outcome,
		 const char *detail)
{
	struct smig_pm r;
	json_t *rec;

	if (d->audit == NULL || d->priv == NULL)
		return;
	if (priv_call(d->priv, &r, SMIG_PM_AUDIT, actor ? actor : "-", action, target ? target : "-",
		      decision ? decision : "-", rule ? rule : "-", outcome ? outcome : "-",
		      detail ? detail : "") < 0) {
		smig_err("event=audit_record_failed action=%s", action);
		return;
	}
	rec = json_loads(smig_pm_str(&r, 1), 0, NULL);
	if (rec)
		ctl_followers_send(d, &d->audit->followers, rec);
	json_decref(rec);
}

bool audit_writable(struct smigd *d)
{
	struct smig_pm r;

	return d->priv && priv_call(d->priv, &r, SMIG_PM_AUDIT_WRITABLE) == 0 &&
	       smig_pm_int(&r, 0) != 0;
}

int audit_open(struct smigd *d)
{
	struct auditlog *a = calloc(1, sizeof(*a));
	int n;

	SMIG_ENSURE(a != NULL, SMIG_ENOMEM);
	d->audit = a;
	if (d->cfg.audit_file[0])
		n = snprintf(a->path, sizeof(a->path), "%s", d->cfg.audit_file);
	else
		n = snprintf(a->path, sizeof(a->path), "%s/audit.log", d->cfg.state_dir);
	SMIG_ENSURE(n > 0 && (size_t)n < sizeof(a->path), SMIG_ECONFIG);
	snprintf(a->head_path, sizeof(a->head_path), "%s.head", a->path);
	a->key = d->host_key;
	return 0;
}

void audit_close(struct smigd *d)
{
	struct auditlog *a = d->audit;

	if (a == NULL)
		return;
	ctl_followers_end(d, &a->followers);
	free(a);
	d->audit = NULL;
}

const char *audit_path(const struct smigd *d)
{
	return d->audit ? d->audit->path : "";
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
