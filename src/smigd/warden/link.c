/*
 * link.c - the warden's end of its link to the worker: what it sends
 * (replies and events, with descriptors), and what it does with a request
 * the worker should never have sent (logged as a security event, audited).
 */
#include "warden/wd_int.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void wd_send(struct warden *w, const struct smig_buf *b, const int *fds, size_t nfds)
{
	if (w->sock < 0)
		return; /* no worker now: the next one asks for what it needs */
	if (smig_pm_send(w->sock, b, fds, nfds) < 0)
		smig_warn("event=warden_send_failed reason=\"%s\"", strerror(errno));
}

void wd_violation(struct warden *w, const char *what, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	smig_err("event=security_event kind=privsep_violation request=%s detail=\"%s\"", what,
		 detail);
	(void)wd_audit_write(w, "worker", "privsep.violation", what, "deny", "-", "refused",
			     detail, NULL);
}
