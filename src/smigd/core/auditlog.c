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
#include "core/smigd.h"
#include "audit.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "core/priv.h"
#include "sign.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct auditlog {
	char path[PATH_MAX];
	char head_path[PATH_MAX + 8];
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

const char *audit_head_path(const struct smigd *d)
{
	return d->audit ? d->audit->head_path : "";
}

void audit_follow(struct smigd *d, struct ctl_ref *ref, const json_t *records)
{
	ctl_follow(d, &d->audit->followers, ref, records);
}

