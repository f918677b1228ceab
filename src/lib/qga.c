/*
 * qga.c - the guest agent's sync exchange. guest-sync-delimited answers with
 * a 0xff before its JSON, so the answer is found after the last 0xff even
 * when earlier bytes are noise or answers to syncs that timed out.
 */
#include "qga.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int smig_qga_sync_request(uint32_t id, char *out, size_t outlen)
{
	int n;

	SMIG_ENSURE(id > 0 && id <= INT32_MAX, SMIG_EINVAL);
	n = snprintf(out, outlen,
		     "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%u}}\n",
		     (unsigned)id);
	SMIG_ENSURE(n > 0 && (size_t)n < outlen, SMIG_ETOOBIG);
	return n;
}

/* One line (no 0xff, no newline inside): is it {"return": id}? */
static bool line_answers(const uint8_t *line, size_t len, uint32_t id)
{
	json_error_t jerr;
	json_t *root, *ret;
	bool ok;

	if (len == 0 || len > SMIG_QGA_LINE_MAX)
		return false;
	root = json_loadb((const char *)line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return false;
	ret = json_object_get(root, "return");
	ok = json_is_object(root) && json_object_size(root) == 1 && json_is_integer(ret) &&
	     json_integer_value(ret) == (json_int_t)id;
	json_decref(root);
	return ok;
}

int smig_qga_sync_answer(const uint8_t *buf, size_t len, uint32_t id, size_t *drop)
{
	size_t i = 0;

	*drop = 0;
	for (;;) {
		const uint8_t *ff = memchr(buf + i, 0xff, len - i);
		const uint8_t *start, *nl;

		if (ff == NULL) {
			*drop = len; /* nothing before a 0xff can be the answer */
			return 0;
		}
		i = (size_t)(ff - buf);
		*drop = i;
		start = ff + 1;
		/* the line ends at a newline; another 0xff first starts a new candidate */
		for (nl = start; nl < buf + len && *nl != '\n' && *nl != 0xff; nl++)
			;
		if (nl == buf + len) {
			if ((size_t)(nl - start) > SMIG_QGA_LINE_MAX)
				*drop = len; /* too long to be an answer: skip it */
			return 0;
		}
		if (*nl == '\n' && line_answers(start, (size_t)(nl - start), id)) {
			*drop = (size_t)(nl + 1 - buf);
			return 1;
		}
		i = (size_t)(nl - buf) + (*nl == '\n' ? 1 : 0);
		*drop = i;
	}
}
