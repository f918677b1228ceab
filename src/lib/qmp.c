/*
 * qmp.c - QMP message parsing and command building (qmp.h).
 */
#include "qmp.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

void smig_qmp_msg_clear(struct smig_qmp_msg *m)
{
	json_decref(m->root);
	memset(m, 0, sizeof(*m));
}

static int qmp_id(struct smig_qmp_msg *m)
{
	const json_t *id = json_object_get(m->root, "id");

	if (id == NULL)
		return 0;
	SMIG_ENSURE(json_is_integer(id) && json_integer_value(id) >= 0, SMIG_EPROTO);
	m->has_id = true;
	m->id = (uint64_t)json_integer_value(id);
	return 0;
}

static int qmp_classify(struct smig_qmp_msg *m)
{
	const json_t *r = m->root;
	const json_t *v;

	if ((v = json_object_get(r, "QMP")) != NULL) {
		SMIG_ENSURE(json_is_object(v), SMIG_EPROTO);
		m->kind = SMIG_QMP_GREETING;
		return 0;
	}
	if ((v = json_object_get(r, "event")) != NULL) {
		SMIG_ENSURE(json_is_string(v), SMIG_EPROTO);
		m->kind = SMIG_QMP_EVENT;
		m->event = json_string_value(v);
		m->data = json_object_get(r, "data");
		SMIG_ENSURE(m->data == NULL || json_is_object(m->data), SMIG_EPROTO);
		return 0;
	}
	if ((v = json_object_get(r, "return")) != NULL) {
		m->kind = SMIG_QMP_RETURN;
		m->ret = v;
		return qmp_id(m);
	}
	if ((v = json_object_get(r, "error")) != NULL) {
		const json_t *cls = json_object_get(v, "class");
		const json_t *desc = json_object_get(v, "desc");

		SMIG_ENSURE(json_is_object(v) && json_is_string(cls) && json_is_string(desc),
			    SMIG_EPROTO);
		m->kind = SMIG_QMP_ERROR;
		m->error_class = json_string_value(cls);
		m->error_desc = json_string_value(desc);
		return qmp_id(m);
	}
	return SMIG_EPROTO;
}

int smig_qmp_parse(const char *line, size_t len, struct smig_qmp_msg *m)
{
	json_error_t jerr;
	int rc;

	memset(m, 0, sizeof(*m));
	SMIG_ENSURE(len <= SMIG_QMP_LINE_MAX, SMIG_ETOOBIG);
	m->root = json_loadb(line, len, 0, &jerr);
	SMIG_ENSURE(m->root != NULL, SMIG_EPROTO);
	if (!json_is_object(m->root)) {
		smig_qmp_msg_clear(m);
		return SMIG_EPROTO;
	}
	rc = qmp_classify(m);
	if (rc < 0)
		smig_qmp_msg_clear(m);
	return rc;
}

char *smig_qmp_command(const char *cmd, json_t *args, uint64_t id)
{
	json_t *o = json_pack("{s:s,s:I}", "execute", cmd, "id", (json_int_t)id);
	char *text;
	char *line = NULL;
	size_t n;

	if (o && args)
		json_object_set(o, "arguments", args);
	json_decref(args);
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (text == NULL)
		return NULL;
	n = strlen(text);
	line = malloc(n + 2);
	if (line) {
		memcpy(line, text, n);
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	free(text);
	return line;
}
