/*
 * fuzz_etcd.c - etcd's gateway answers, as a member (or whoever holds its
 * address) may send them: every parser over the same bytes (the watch's
 * as a stream of messages), and base64.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct smig_etcd_kvs k;
	char err[256], *text;
	int64_t a, b;
	bool ok;
	size_t n;
	uint8_t *d;

	if (smig_etcd_parse_range(s, size, &k, err, sizeof(err)) == 0) {
		if ((int64_t)k.n > k.count)
			__builtin_trap();
		for (size_t i = 0; i < k.n; i++)
			if (k.v[i].key == NULL || k.v[i].key[0] == '\0' || k.v[i].value == NULL)
				__builtin_trap();
	}
	smig_etcd_kvs_free(&k);
	(void)smig_etcd_parse_txn(s, size, &ok, &a, err, sizeof(err));
	(void)smig_etcd_parse_write(s, size, &a, &b, err, sizeof(err));
	(void)smig_etcd_parse_lease(s, size, &a, &b, err, sizeof(err));
	(void)smig_etcd_answer_error(s, size, err, sizeof(err));
	/* a watch's stream: message after message, each taking bytes, until none is whole */
	for (size_t off = 0, used; off < size;) {
		struct smig_etcd_watch_msg m;
		int r = smig_etcd_parse_watch(s + off, size - off, &m, &used, err, sizeof(err));

		if (r <= 0)
			break;
		if (used == 0 || used > size - off || m.events.n != (size_t)m.events.count ||
		    (m.events.n && m.deleted == NULL))
			__builtin_trap();
		for (size_t i = 0; i < m.events.n; i++)
			if (m.events.v[i].key == NULL || m.events.v[i].value == NULL)
				__builtin_trap();
		smig_etcd_watch_msg_free(&m);
		off += used;
	}
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	d = smig_etcd_unb64(text, &n);
	if (d) {
		char *e = smig_etcd_b64(d, n);

		/* only canonical text decodes: it encodes back to itself */
		if (e == NULL || (strlen(text) == size && strcmp(e, text) != 0))
			__builtin_trap();
		free(e);
		free(d);
	}
	free(text);
	return 0;
}
