/*
 * notify.c - telling systemd how smigd is (Type=notify; libsystemd's
 * sd_notify, a no-op without NOTIFY_SOCKET): READY=1 once the worker
 * serves (its control socket and peer listener are open), RELOADING=1 and
 * READY=1 around a SIGHUP, STOPPING=1 at SIGTERM, each with a STATUS line
 * that systemctl status shows. Only the warden, smigd's main process,
 * speaks to systemd.
 */
#include "warden/wd_int.h"
#include "log.h"

#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

void wd_notify(struct warden *w, enum wd_state state)
{
	struct timespec ts;
	int rc = 0;

	switch (state) {
	case WD_READY:
		if (w->ready_told)
			return; /* a restarted worker: systemd heard it the first time */
		w->ready_told = true;
		/* fall through - ready, as after a reload */
	case WD_RELOADED:
		rc = sd_notifyf(0, "READY=1\nSTATUS=serving as %s", w->cfg.host);
		break;
	case WD_RELOADING:
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rc = sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
				(unsigned long long)ts.tv_sec * 1000000ULL +
					(unsigned long long)ts.tv_nsec / 1000);
		break;
	case WD_STOPPING:
		rc = sd_notify(0, "STOPPING=1\nSTATUS=stopping: the worker first, the VMs run on");
		break;
	}
	if (rc < 0)
		smig_warn("event=notify_failed state=%d reason=\"%s\"", (int)state, strerror(-rc));
}
