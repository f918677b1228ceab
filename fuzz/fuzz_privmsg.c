/*
 * fuzz_privmsg.c - the warden's view of whatever a compromised worker
 * could send it (and the worker's of its parent): one datagram, parsed
 * strictly; a message that parses must encode back to the same bytes, its
 * strings must be what their kind allows, and nothing may be read past
 * the datagram. The first input byte is how many descriptors came with it.
 */
#include "buf.h"
#include "msg.h"
#include "privmsg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int fds[SMIG_PM_FDS_MAX] = { 100, 101 };
	struct smig_pm m;
	struct smig_buf b;
	size_t nfds;
	uint8_t *copy;

	if (size < 1)
		return 0;
	nfds = data[0] % (SMIG_PM_FDS_MAX + 2); /* one more than allowed, too */
	copy = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees any read beyond */
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (smig_pm_parse(copy, size - 1, fds, nfds, &m) == 0) {
		if (m.nfds > SMIG_PM_FDS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < m.nf; i++) {
			const struct smig_pm_field *f = &m.f[i];

			if (f->kind == 'n' && !smig_name_valid(f->s))
				__builtin_trap();
			if (f->s && strlen(f->s) != f->len)
				__builtin_trap();
			if (f->kind == 'b' && f->u > 1)
				__builtin_trap();
		}
		smig_buf_init(&b, SMIG_PM_MAX);
		if (smig_pm_encode(&b, &m) != 0 || smig_buf_remaining(&b) != size - 1 ||
		    memcmp(smig_buf_peek(&b), copy, size - 1) != 0)
			__builtin_trap();
		smig_buf_clear(&b);
	}
	free(copy);
	return 0;
}
