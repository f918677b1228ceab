/*
 * ctl.h - the control protocol's request lines, parsed strictly.
 *
 * A request is one JSON object per line: {"id", "cmd", "args"}; id is an
 * integer or a string, cmd a string, args an optional object. Unknown keys
 * are refused. The daemon dispatches on cmd; handlers check their own args
 * with smig_ctl_args_only().
 */
#ifndef SMIG_CTL_H
#define SMIG_CTL_H

#include <jansson.h>
#include <stddef.h>

#define SMIG_CTL_CMD_MAX 32

struct smig_ctl_req {
	json_t *id;   /* owned reference, or NULL when the request had none */
	char cmd[SMIG_CTL_CMD_MAX + 1];
	json_t *args; /* owned reference; an empty object when absent */
};

/*
 * Parses one request line. On failure err says why and req->id still holds
 * the request's id when one could be read, so the error can be answered.
 */
int smig_ctl_parse(const char *line, size_t len, struct smig_ctl_req *req, char *err,
		   size_t errlen);
void smig_ctl_req_clear(struct smig_ctl_req *req);
/*
 * 0 if every key of args is one of allowed (NULL-terminated); otherwise
 * SMIG_EINVAL with the offending key named in err.
 */
int smig_ctl_args_only(const json_t *args, const char *const *allowed, char *err,
		       size_t errlen);

#endif
