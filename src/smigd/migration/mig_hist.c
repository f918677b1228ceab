/*
 * mig_hist.c - the history of the migrations that ended on this host,
 * either way (migrate.h): one JSON record per migration, appended to
 * STATE_DIR/worker/migrations.jsonl as it ends and read back at the first
 * use after a restart. The last MIG_HISTORY_MAX are kept; the file is
 * rewritten with them once it holds twice as many. No fsync: a record
 * lost to a power cut loses nothing a VM needs (the audit log has the
 * migration too).
 *
 * A record: id, vm, direction (out/in), peer, outcome (completed, failed,
 * cancelled), reason, started/ended (UTC), phases (name, start offset and
 * length in ms), total_ms, downtime_ms (as the guest saw it, outgoing),
 * qemu_downtime_ms, bytes, passes, mbps, cipher, trust (the peer's verdict,
 * outgoing) and rule (the binding that let the peer in, incoming).
 */
#include "migration/mig_int.h"
#include "error.h"
#include "file.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIG_HISTORY_MAX 500
#define MIG_HISTORY_LINE_MAX 8192

static void history_path(const struct smigd *d, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/worker/migrations.jsonl", d->cfg.state_dir);
}

/* The records of the file, the last MIG_HISTORY_MAX; lines that do not parse are skipped. */
static void history_load(struct smigd *d)
{
	char path[PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	d->migs->history = json_array();
	d->migs->hist_disk = 0;
	history_path(d, path, sizeof(path));
	f = fopen(path, "re");
	while (f && (n = getline(&line, &cap, f)) > 0) {
		json_t *o;

		d->migs->hist_disk++;
		if (n > MIG_HISTORY_LINE_MAX)
			continue;
		o = json_loads(line, 0, NULL);
		if (!json_is_object(o)) {
			json_decref(o);
			continue;
		}
		json_array_append_new(d->migs->history, o);
		if (json_array_size(d->migs->history) > MIG_HISTORY_MAX)
			json_array_remove(d->migs->history, 0);
	}
	free(line);
	if (f)
		fclose(f);
}

static json_t *history(struct smigd *d)
{
	if (d->migs->history == NULL)
		history_load(d);
	return d->migs->history;
}

/* The file again with only the records kept (write to .tmp, rename). */
static void history_rewrite(struct smigd *d)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	size_t i;
	json_t *o;
	FILE *f;

	history_path(d, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (f == NULL)
		return;
	json_array_foreach(d->migs->history, i, o) {
		char *text = json_dumps(o, JSON_COMPACT);

		if (text)
			fprintf(f, "%s\n", text);
		free(text);
	}
	if (fclose(f) == 0 && rename(tmp, path) == 0)
		d->migs->hist_disk = json_array_size(d->migs->history);
	else
		(void)unlink(tmp);
}

static void phase(json_t *arr, const char *name, uint64_t t0, uint64_t from, uint64_t to)
{
	if (from == 0 || to == 0 || to < from)
		return;
	json_array_append_new(arr, json_pack("{s:s,s:f,s:f}", "name", name, "at_ms",
					     (double)(from - t0) / 1e6, "ms",
					     (double)(to - from) / 1e6));
}

static json_t *record(const struct mig *m)
{
	static const char *const outcome[] = { "completed", "failed", "cancelled" };
	uint64_t end = m->t_end ? m->t_end : loop_now_ns();
	int64_t ended = m->wall_start_ms + (int64_t)((loop_now_ns() - m->t_start) / 1000000);
	char s[SMIG_TIME_ISO_LEN], e[SMIG_TIME_ISO_LEN];
	json_t *phases = json_array(), *o;

	smig_time_iso_ms(m->wall_start_ms, s);
	smig_time_iso_ms(ended, e);
	if (m->p.source) {
		phase(phases, "connecting and attesting", m->t_start, m->t_start, m->t_prepare);
		phase(phases, "preparing", m->t_start, m->t_prepare, m->t_prepared);
		phase(phases, "copying memory", m->t_start, m->t_prepared,
		      m->t_stop ? m->t_stop : end);
		phase(phases, "switching over", m->t_start, m->t_stop, m->t_end);
	} else {
		phase(phases, "receiving memory", m->t_start, m->t_start,
		      m->t_commit ? m->t_commit : end);
		phase(phases, "switching over", m->t_start, m->t_commit, m->t_resumed);
	}
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:f,s:I,s:I,s:f,s:s,s:s,s:s}", "id", m->ids,
		      "vm", m->vm_name, "direction", m->p.source ? "out" : "in", "peer",
		      m->peer_host, "outcome", outcome[m->outcome], "started", s, "ended", e,
		      "phases", phases, "total_ms", (double)(end - m->t_start) / 1e6, "bytes",
		      (json_int_t)mig_bytes(m), "passes", (json_int_t)m->passes, "mbps", m->mbps,
		      "cipher", m->cipher, "trust", m->trust, "rule", m->rule);
	if (o == NULL)
		return NULL;
	if (m->reason[0])
		json_object_set_new(o, "reason", json_string(m->reason));
	if (m->outcome != STATS_COMPLETED) /* which side ended it: the one that sent ABORT, or this */
		json_object_set_new(o, "failed_by",
				    json_string(m->ended_by_peer == m->p.source ? "destination" : "source"));
	if (m->policy[0])
		json_object_set_new(o, "policy", json_string(m->policy));
	if (m->p.source && m->dirty_rate) /* QEMU's last figure before the end */
		json_object_set_new(o, "dirty_pages_rate", json_integer((json_int_t)m->dirty_rate));
	if (m->queued_ms)
		json_object_set_new(o, "queued_ms", json_integer((json_int_t)m->queued_ms));
	if (m->p.source && m->outcome == STATS_COMPLETED && m->t_stop && m->t_end) {
		json_object_set_new(o, "downtime_ms", json_real((double)(m->t_end - m->t_stop) / 1e6));
		json_object_set_new(o, "qemu_downtime_ms", json_integer((json_int_t)m->qemu_downtime_ms));
	}
	return o;
}

void mig_history_add(struct mig *m)
{
	struct smigd *d = m->d;
	json_t *h = history(d), *o;
	char path[PATH_MAX], *text;
	int fd;

	if (m->ids[0] == '-' || m->vm_name[0] == '\0')
		return; /* refused before it had an id or a VM: the log and audit say so */
	o = record(m);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (o == NULL || text == NULL) {
		json_decref(o);
		return;
	}
	json_array_append_new(h, o);
	if (json_array_size(h) > MIG_HISTORY_MAX)
		json_array_remove(h, 0);
	history_path(d, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || smig_file_write_all(fd, text, strlen(text)) < 0 ||
	    smig_file_write_all(fd, "\n", 1) < 0)
		smig_warn("event=migration_history_not_saved id=%s path=%s", m->ids, path);
	if (fd >= 0)
		close(fd);
	free(text);
	if (++d->migs->hist_disk > (size_t)2 * MIG_HISTORY_MAX)
		history_rewrite(d);
}

json_t *mig_history_json(struct smigd *d, size_t last, const char *vm)
{
	json_t *h = history(d), *out = json_array(), *o;
	size_t i, n = 0;

	/* newest first while counting, then turned around: the last ones, oldest first */
	for (i = json_array_size(h); i-- > 0 && (last == 0 || n < last);) {
		o = json_array_get(h, i);
		if (vm && strcmp(json_string_value(json_object_get(o, "vm")) ?: "", vm) != 0)
			continue;
		json_array_insert(out, 0, o);
		n++;
	}
	return out;
}

json_t *mig_history_find(struct smigd *d, const char *id)
{
	json_t *h = history(d), *o, *found = NULL;
	size_t i, len = strlen(id);

	if (len < 8)
		return NULL; /* a prefix this short names too many */
	json_array_foreach(h, i, o) {
		const char *oid = json_string_value(json_object_get(o, "id")) ?: "";

		if (strcmp(oid, id) == 0)
			return json_incref(o);
		if (strncmp(oid, id, len) == 0) {
			if (found && strcmp(json_string_value(json_object_get(found, "id")), oid) != 0)
				return NULL; /* two migrations begin so */
			found = o;
		}
	}
	return found ? json_incref(found) : NULL;
}

void mig_history_free(struct smigd *d)
{
	if (d->migs == NULL)
		return;
	json_decref(d->migs->history);
	d->migs->history = NULL;
}
