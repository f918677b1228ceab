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
 *
 * What anyone can repeat at will (a refused local request, a failed
 * handshake) is folded: per key, the first record of a window of
 * AUDIT_FOLD_MS is written at once, the rest only counted, and one record
 * "N more like it" ends the window. Past AUDIT_FOLDS keys in their window,
 * new ones share one "*" key, so a flood from many callers writes a
 * bounded number of records (and fsyncs) per window.
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


#define AUDIT_FOLDS 64
#define AUDIT_FOLD_MS 10000

/* One folded key: what its window's summary record says. */
struct afold {
	char key[512]; /* "" when free */
	uint64_t start_ms;
	unsigned more; /* records like the first since, not written */
	char actor[96], action[48], target[192], decision[8], rule[64], outcome[24];
	char detail[256]; /* the last one's */
	char who[200];    /* the overflow's: the callers and targets folded into it */
};

struct auditlog {
	char path[PATH_MAX];
	char head_path[PATH_MAX + 8];
	struct ctl_followers followers;
	struct afold fold[AUDIT_FOLDS + 1]; /* the last: the "*" key of the overflow */
	struct loop_timer *fold_timer;
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

static void fold_fill(struct afold *f, const char *actor, const char *action,
		      const char *target, const char *decision, const char *rule,
		      const char *outcome, const char *detail)
{
	snprintf(f->actor, sizeof(f->actor), "%s", actor ? actor : "-");
	snprintf(f->action, sizeof(f->action), "%s", action);
	snprintf(f->target, sizeof(f->target), "%s", target ? target : "-");
	snprintf(f->decision, sizeof(f->decision), "%s", decision ? decision : "-");
	snprintf(f->rule, sizeof(f->rule), "%s", rule ? rule : "-");
	snprintf(f->outcome, sizeof(f->outcome), "%s", outcome ? outcome : "-");
	snprintf(f->detail, sizeof(f->detail), "%s", detail ? detail : "");
}

/* Writes the window's "N more like it" record, if any, and frees the key. */
static void fold_close(struct smigd *d, struct afold *f)
{
	char detail[640];

	if (f->more > 0) {
		snprintf(detail, sizeof(detail), "%u more like it in %llu s%s%s (the last: %s)",
			 f->more, (unsigned long long)(loop_now_ms() - f->start_ms + 999) / 1000,
			 f->who[0] ? " from " : "", f->who, f->detail);
		audit_write(d, f->actor, f->action, f->target, f->decision, f->rule, f->outcome,
			    detail);
	}
	memset(f, 0, sizeof(*f));
}

static void fold_tick(void *arg)
{
	struct smigd *d = arg;
	struct auditlog *a = d->audit;
	uint64_t now = loop_now_ms();
	bool busy = false;

	a->fold_timer = NULL;
	for (size_t i = 0; i <= AUDIT_FOLDS; i++) {
		struct afold *f = &a->fold[i];

		if (f->key[0] && now - f->start_ms >= AUDIT_FOLD_MS)
			fold_close(d, f);
		busy |= f->key[0] != '\0';
	}
	if (busy)
		(void)loop_timer_add(d->loop, AUDIT_FOLD_MS / 4, fold_tick, d, &a->fold_timer);
}

/*
 * The overflow's summary names whom it folded: each caller and target once,
 * as many as fit (then "..."), so a flood through it hides nobody's name
 * that fits in a record.
 */
static void fold_other(struct afold *f, const char *actor, const char *action,
		       const char *target, const char *decision, const char *outcome,
		       const char *detail)
{
	char one[160];
	size_t used = strlen(f->who);

	if (strcmp(f->action, action) != 0)
		snprintf(f->action, sizeof(f->action), "%s", "various");
	snprintf(f->actor, sizeof(f->actor), "various");
	snprintf(f->target, sizeof(f->target), "various");
	snprintf(f->rule, sizeof(f->rule), "-");
	snprintf(f->decision, sizeof(f->decision), "%s", decision ? decision : "-");
	snprintf(f->outcome, sizeof(f->outcome), "%s", outcome ? outcome : "-");
	snprintf(f->detail, sizeof(f->detail), "%s", detail ? detail : "");
	snprintf(one, sizeof(one), "%s %s %s", actor ? actor : "-", action, target ? target : "-");
	if (strstr(f->who, one))
		return;
	if (used + strlen(one) + 2 < sizeof(f->who) - 4)
		snprintf(f->who + used, sizeof(f->who) - used, "%s%s", used ? "; " : "", one);
	else if (used >= 3 && used + 6 < sizeof(f->who) && strcmp(f->who + used - 3, "...") != 0)
		snprintf(f->who + used, sizeof(f->who) - used, "; ...");
}

/* The slot for key: its own, a free one, an expired one, or the overflow's. */
static struct afold *fold_slot(struct smigd *d, const char *key)
{
	struct auditlog *a = d->audit;
	uint64_t now = loop_now_ms();
	struct afold *free_slot = NULL;

	for (size_t i = 0; i < AUDIT_FOLDS; i++) {
		struct afold *f = &a->fold[i];

		if (f->key[0] && strcmp(f->key, key) == 0)
			return f;
		if (f->key[0] && now - f->start_ms >= AUDIT_FOLD_MS)
			fold_close(d, f); /* its window is over: write it, reuse it */
		if (!f->key[0] && free_slot == NULL)
			free_slot = f;
	}
	return free_slot ? free_slot : &a->fold[AUDIT_FOLDS];
}

void audit_write_folded(struct smigd *d, const char *key, const char *actor,
			const char *action, const char *target, const char *decision,
			const char *rule, const char *outcome, const char *detail)
{
	struct afold *f;

	if (d->audit == NULL)
		return;
	f = fold_slot(d, key);
	if (f->key[0] && loop_now_ms() - f->start_ms < AUDIT_FOLD_MS) {
		f->more++;
		if (f == &d->audit->fold[AUDIT_FOLDS])
			fold_other(f, actor, action, target, decision, outcome, detail);
		else
			snprintf(f->detail, sizeof(f->detail), "%s", detail ? detail : "");
		return;
	}
	if (f->key[0])
		fold_close(d, f);
	snprintf(f->key, sizeof(f->key), "%s", f == &d->audit->fold[AUDIT_FOLDS] ? "*" : key);
	f->start_ms = loop_now_ms();
	fold_fill(f, actor, action, target, decision, rule, outcome, detail);
	audit_write(d, actor, action, target, decision, rule, outcome, detail);
	if (d->audit->fold_timer == NULL)
		(void)loop_timer_add(d->loop, AUDIT_FOLD_MS / 4, fold_tick, d,
				     &d->audit->fold_timer);
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
	for (size_t i = 0; i <= AUDIT_FOLDS; i++)
		if (a->fold[i].key[0])
			fold_close(d, &a->fold[i]); /* what was counted is written before the end */
	if (d->loop)
		loop_timer_cancel(d->loop, a->fold_timer);
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

