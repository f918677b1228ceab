/*
 * cmd_ids.c - the monitor's commands: events (the last security events, or
 * --follow: every new one), ids.status (bans in force, counts, the
 * firewall's settings) and ids.unban (core/monitor.c has the state).
 */
#include "control/control.h"
#include "ctl.h"
#include "error.h"

#include <stdio.h>

void cmd_events(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "last", "follow", NULL };
	const json_t *last = json_object_get(args, "last");
	char err[128] = "";
	json_t *arr;

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0 ||
	    (last && (!json_is_integer(last) || json_integer_value(last) < 0))) {
		ctl_reply_err(d, ref, "bad_request", "events takes last (a count) and follow");
		return;
	}
	arr = monitor_events_json(d, last ? (size_t)json_integer_value(last) : 100);
	if (!json_is_true(json_object_get(args, "follow"))) {
		ctl_reply_ok(d, ref, json_pack("{s:o}", "events", arr));
		return;
	}
	monitor_follow(d, ref, arr);
	json_decref(arr);
}

void cmd_ids_status(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	(void)args;
	ctl_reply_ok(d, ref, monitor_status_json(d));
}

void cmd_ids_unban(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	const char *addr = json_string_value(json_object_get(args, "addr"));

	if (addr == NULL || json_object_size(args) != 1) {
		ctl_reply_err(d, ref, "bad_request", "ids.unban needs args.addr");
		return;
	}
	if (monitor_unban(d, addr) < 0) {
		ctl_reply_err(d, ref, "not_found", "%s is not banned", addr);
		return;
	}
	ctl_reply_ok(d, ref, json_pack("{s:s}", "unbanned", addr));
}
