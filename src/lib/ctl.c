/*
 * ctl.c - strict parsing of control request lines (ctl.h).
 */
#include "ctl.h"
#include "error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void smig_ctl_req_clear(struct smig_ctl_req *req)
{
	json_decref(req->id);
	json_decref(req->args);
	memset(req, 0, sizeof(*req));
}

static int ctl_check(json_t *obj, struct smig_ctl_req *req, char *err, size_t errlen)
{
	const json_t *cmd = json_object_get(obj, "cmd");
	json_t *args = json_object_get(obj, "args");
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		if (strcmp(key, "id") != 0 && strcmp(key, "cmd") != 0 && strcmp(key, "args") != 0) {
			snprintf(err, errlen, "unknown request key \"%.32s\"", key);
			return SMIG_EINVAL;
		}
	}
	if (req->id == NULL || !(json_is_integer(req->id) || json_is_string(req->id))) {
		snprintf(err, errlen, "request needs an id, an integer or a string");
		return SMIG_EINVAL;
	}
	if (!json_is_string(cmd) || json_string_length(cmd) == 0 ||
	    json_string_length(cmd) > SMIG_CTL_CMD_MAX) {
		snprintf(err, errlen, "request needs cmd, a string of 1-%d characters",
			 SMIG_CTL_CMD_MAX);
		return SMIG_EINVAL;
	}
	if (args != NULL && !json_is_object(args)) {
		snprintf(err, errlen, "args must be an object");
		return SMIG_EINVAL;
	}
	memcpy(req->cmd, json_string_value(cmd), json_string_length(cmd) + 1);
	req->args = args ? json_incref(args) : json_object();
	return req->args ? 0 : SMIG_ENOMEM;
}

int smig_ctl_parse(const char *line, size_t len, struct smig_ctl_req *req, char *err,
		   size_t errlen)
{
	json_error_t jerr;
	json_t *obj;
	int rc;

	memset(req, 0, sizeof(*req));
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		snprintf(err, errlen, "request is not valid JSON (column %d: %s)", jerr.column,
			 jerr.text);
		return SMIG_EINVAL;
	}
	if (!json_is_object(obj)) {
		json_decref(obj);
		snprintf(err, errlen, "request must be a JSON object");
		return SMIG_EINVAL;
	}
	req->id = json_incref(json_object_get(obj, "id"));
	rc = ctl_check(obj, req, err, errlen);
	json_decref(obj);
	return rc;
}

int smig_ctl_args_only(const json_t *args, const char *const *allowed, char *err,
		       size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)args, key, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(allowed[i], key) == 0;
		if (!ok) {
			snprintf(err, errlen, "unknown argument \"%.32s\"", key);
			return SMIG_EINVAL;
		}
	}
	return 0;
}
