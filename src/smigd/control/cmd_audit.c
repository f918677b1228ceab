/*
 * cmd_audit.c - audit.show (the last records, or --follow: every new one)
 * and audit.verify (chain, checkpoints, signed head), from the files the
 * warden writes and the worker may read (core/auditlog.c).
 */
#include "control/control.h"
#include "audit.h"
#include "ctl.h"
#include "error.h"
#include "file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_FILE_MAX ((size_t)256 * 1024 * 1024)
#define AUDIT_SHOW_DEFAULT 100
#define AUDIT_SHOW_MAX 10000

/*
 * Reads the log with its rotated files (oldest first, the current log last,
 * empty when missing) and its head (NULL when missing).
 */
static int read_log(struct smigd *d, struct smig_audit_file **files, size_t *n, char **head,
		    size_t *hlen, char *err, size_t errlen)
{
	SMIG_GUARD(smig_audit_files_read(audit_path(d), AUDIT_FILE_MAX, files, n, err, errlen));
	if (smig_file_read(audit_head_path(d), 4096, head, hlen, err, errlen) < 0)
		*head = NULL;
	return 0;
}

/* The last n lines of one file as records (n == 0: all). */
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

void cmd_audit_show(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "last", "follow", NULL };
	const json_t *last = json_object_get(args, "last");
	struct smig_audit_file *files = NULL;
	char *head = NULL, err[512];
	size_t nfiles = 0, hlen, want;
	json_t *recs;

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0 ||
	    (last && (!json_is_integer(last) || json_integer_value(last) < 0 ||
		      json_integer_value(last) > AUDIT_SHOW_MAX))) {
		ctl_reply_err(d, ref, "bad_request",
			      "audit.show takes last (0-%d, 0 for all) and follow", AUDIT_SHOW_MAX);
		return;
	}
	if (read_log(d, &files, &nfiles, &head, &hlen, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "error", "%s", err);
		return;
	}
	want = last ? (size_t)json_integer_value(last) : AUDIT_SHOW_DEFAULT;
	/* newest file first, going back through rotated ones until enough */
	recs = json_array();
	for (size_t i = nfiles; recs && i-- > 0 && (want == 0 || json_array_size(recs) < want);) {
		json_t *older = last_records(files[i].text, files[i].len,
					     want ? want - json_array_size(recs) : 0);

		if (older && json_array_extend(older, recs) == 0) {
			json_decref(recs);
			recs = older;
		} else {
			json_decref(older);
		}
	}
	smig_audit_files_free(files, nfiles);
	free(head);
	if (recs == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	if (!json_is_true(json_object_get(args, "follow"))) {
		ctl_reply_ok(d, ref, json_pack("{s:s,s:o}", "file", audit_path(d), "records", recs));
		return;
	}
	audit_follow(d, ref, recs);
	json_decref(recs);
}

void cmd_audit_verify(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { NULL };
	struct smig_audit_report rep;
	struct smig_audit_file *files = NULL;
	char *head = NULL, err[512];
	size_t nfiles = 0, hlen = 0;
	json_t *out;
	int rc;

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "bad_request", "audit.verify: %s", err);
		return;
	}
	if (read_log(d, &files, &nfiles, &head, &hlen, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "error", "%s", err);
		return;
	}
	rc = smig_audit_verify_files(files, nfiles, head, hlen, d->host_key, &rep);
	smig_audit_files_free(files, nfiles);
	free(head);
	if (rc < 0) {
		ctl_reply_err(d, ref, "error", "%s: %s", audit_path(d), smig_strerror(rc));
		return;
	}
	out = smig_audit_report_json(&rep);
	json_object_set_new(out, "file", json_string(audit_path(d)));
	ctl_reply_ok(d, ref, out);
}
