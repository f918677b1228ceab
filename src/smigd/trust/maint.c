/*
 * maint.c - maintenance mode: a planned change is not a tamper.
 *
 * While a host is in maintenance it takes no VMs (its evidence says so,
 * signed, and the destination refuses PREPARE itself), and a failed
 * self-check does not evacuate it: an operator is upgrading QEMU, swtpm,
 * smigd or its config, and enrols the new golden values before turning
 * maintenance off. VMs can still leave on request (`smig evacuate`,
 * `smig migrate`). The state survives a restart of smigd and a reboot
 * (STATE_DIR/worker/maintenance): an upgrade may need both.
 */
#include "trust/trust.h"
#include "error.h"
#include "file.h"
#include "json.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *str_or_empty(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static void maint_path(const struct smigd *d, char *out, size_t len)
{
	snprintf(out, len, "%s/worker/maintenance", d->cfg.state_dir);
}

void maint_load(struct smigd *d, struct attest_maint *m)
{
	char path[4200], err[256], *text = NULL;
	json_t *o;
	size_t len;

	memset(m, 0, sizeof(*m));
	maint_path(d, path, sizeof(path));
	if (smig_file_read(path, 4096, &text, &len, err, sizeof(err)) < 0)
		return; /* none: not in maintenance */
	o = json_loadb(text, len, 0, NULL);
	free(text);
	if (!json_is_object(o)) {
		/* unreadable: stay out of the VMs' way rather than take new ones */
		smig_err("event=maintenance_unreadable path=%s action=kept_on", path);
		m->on = true;
		snprintf(m->reason, sizeof(m->reason), "%s could not be read", path);
	} else {
		m->on = true;
		snprintf(m->reason, sizeof(m->reason), "%s", str_or_empty(o, "reason"));
		snprintf(m->by, sizeof(m->by), "%s", str_or_empty(o, "by"));
		m->since_ms = json_integer_value(json_object_get(o, "since_ms"));
	}
	json_decref(o);
	smig_warn("event=maintenance_on host=%s by=\"%s\" reason=\"%s\" restored=yes", d->cfg.host,
		  m->by, m->reason);
}

int maint_save(struct smigd *d, const struct attest_maint *m, char *err, size_t errlen)
{
	char path[4200], *text;
	json_t *o;
	int rc;

	maint_path(d, path, sizeof(path));
	if (!m->on) {
		if (unlink(path) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return SMIG_EIO;
		}
		(void)smig_file_sync_dir(path);
		return 0;
	}
	o = json_pack("{s:s,s:s,s:I}", "by", m->by, "reason", m->reason, "since_ms",
		      (json_int_t)m->since_ms);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	SMIG_ENSURE(text != NULL, SMIG_ENOMEM);
	rc = smig_file_write_atomic(path, text, strlen(text), 0600);
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return rc < 0 ? SMIG_EIO : 0;
}

json_t *maint_json(const struct attest_maint *m)
{
	char since[SMIG_TIME_ISO_LEN] = "";

	if (!m->on)
		return json_pack("{s:b}", "on", 0);
	smig_time_iso_ms(m->since_ms, since);
	return json_pack("{s:b,s:s,s:s,s:s}", "on", 1, "by", m->by, "reason", m->reason, "since",
			 since);
}
