/*
 * qmp.h - QEMU Machine Protocol messages: parse the lines QEMU sends
 * (greeting, return, error, event), build the commands smigd sends.
 * The transport (a unix socket, fd passing) lives in smigd.
 */
#ifndef SMIG_QMP_H
#define SMIG_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_QMP_LINE_MAX ((size_t)1024 * 1024)

enum smig_qmp_kind {
	SMIG_QMP_GREETING,
	SMIG_QMP_RETURN,
	SMIG_QMP_ERROR,
	SMIG_QMP_EVENT,
};

struct smig_qmp_msg {
	enum smig_qmp_kind kind;
	json_t *root;       /* owned */
	bool has_id;
	uint64_t id;        /* our command id, when has_id */
	const json_t *ret;  /* RETURN: the value */
	const char *event;  /* EVENT: its name */
	const json_t *data; /* EVENT: its data object (may be NULL) */
	const char *error_class;
	const char *error_desc;
};

/* Parses one line from QEMU; anything else than the four shapes is SMIG_EPROTO. */
int smig_qmp_parse(const char *line, size_t len, struct smig_qmp_msg *m);
void smig_qmp_msg_clear(struct smig_qmp_msg *m);
/*
 * {"execute": cmd, "arguments": args, "id": id} and a newline, malloc'd.
 * args may be NULL and is stolen.
 */
char *smig_qmp_command(const char *cmd, json_t *args, uint64_t id);

#endif
