/*
 * main.c - smigd's command line.
 *
 * smigd [--config PATH] [--foreground] [--check-config] [--measure]
 *
 * A start runs the warden (warden/warden.c), which runs the worker: this
 * same binary again with --worker FD, never started by hand.
 */
#include "error.h"
#include "log.h"
#include "warden/warden.h"
#include "worker/worker.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define DEFAULT_CONFIG SMIG_CONFDIR "/smigd.json"

static void usage(FILE *f)
{
	fprintf(f, "usage: smigd [--config PATH] [--foreground] [--check-config] [--measure]\n"
		   "             [--version]\n"
		   "  --config PATH    configuration file (default %s)\n"
		   "  --foreground     stay in the foreground and log to stderr\n"
		   "  --check-config   validate the configuration and what a start needs, and exit\n"
		   "  --measure        print this host's measurement (for the IVT) and exit\n",
		DEFAULT_CONFIG);
}

/* The worker: everything but what needs root, on the link fd to the warden. */
static int worker_main(const char *config, int fd)
{
	struct smigd d = { .sig_fd = -1 };
	int rc;

	(void)prctl(PR_SET_NAME, "smigd-worker", 0, 0, 0);
	d.warden_pid = getppid();
	if (smig_log_stop_at(getenv("SMIG_STOP_AT")) < 0)
		return 2;
	d.started = time(NULL);
	rc = smigd_start(&d, config, false, fd, true);
	if (rc == 0) {
		smig_info("event=worker_ready host=%s pid=%d", d.cfg.host, (int)getpid());
		smigd_ready(&d); /* the warden tells systemd (Type=notify) */
		rc = loop_run(d.loop);
	}
	smigd_stop(&d);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "measure", no_argument, NULL, 'm' },
		{ "worker", required_argument, NULL, 'w' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = DEFAULT_CONFIG;
	bool foreground = false, check = false, measure = false;
	int worker_fd = -1;
	int c;

	while ((c = getopt_long(argc, argv, "c:fkmVh", opts, NULL)) != -1) {
		switch (c) {
		case 'm': measure = true; break;
		case 'c': config = optarg; break;
		case 'f': foreground = true; break;
		case 'k': check = true; break;
		case 'w': worker_fd = (int)strtol(optarg, NULL, 10); break;
		case 'V': printf("smigd %s\n", SMIG_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (worker_fd >= 3) {
		/* the warden's exec: keep the link, nothing else of what it had open */
		closefrom(worker_fd + 1);
		for (int fd = 3; fd < worker_fd; fd++)
			close(fd);
		smig_log_init("smigd", SMIG_LOG_INFO, !foreground);
		return worker_main(config, worker_fd);
	}
	/*
	 * Nothing the starter left open (a lock, a pipe, a terminal) stays open
	 * in the daemon or reaches its QEMUs and swtpms: they would hold it for
	 * as long as they live.
	 */
	closefrom(3);
	smig_log_init("smigd", SMIG_LOG_INFO, false);
	if (smig_log_stop_at(getenv("SMIG_STOP_AT")) < 0) { /* fault tests: stop at these events */
		fprintf(stderr, "smigd: SMIG_STOP_AT is set, but this smigd was built without stop "
				"points (meson -Dstop_points=true, as make check's sanitizer build "
				"is); unset it\n");
		return 2;
	}
	if (measure)
		return warden_measure(config);
	if (check) {
		struct smigd d = { .sig_fd = -1 };
		int rc = smigd_start(&d, config, true, -1, false);

		if (rc == 0)
			printf("%s: configuration ok (%zu hosts)\n", config, smigd_hosts(&d)->n);
		smigd_stop(&d);
		return rc == 0 ? 0 : 1;
	}
	return warden_main(config, foreground);
}
