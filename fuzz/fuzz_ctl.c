/*
 * fuzz_ctl.c - the control request parser and argument checker on
 * arbitrary lines.
 */
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "host", "vm", NULL };
	struct smig_ctl_req req;
	char err[256];

	if (smig_ctl_parse((const char *)data, size, &req, err, sizeof(err)) == 0)
		(void)smig_ctl_args_only(req.args, allowed, err, sizeof(err));
	smig_ctl_req_clear(&req);
	return 0;
}
