/*
 * main.c - smigd's command line.
 *
 * smigd [--config PATH] [--foreground] [--check-config] [--measure]
 *
 * What starting and stopping does is daemon.c.
 */
#include "smigd.h"
#include "error.h"
#include "log.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/smig/smigd.json"

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return SMIG_EIO;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return SMIG_EIO;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: smigd [--config PATH] [--foreground] [--check-config] [--measure]\n"
		   "             [--version]\n"
		   "  --config PATH    configuration file (default %s)\n"
		   "  --foreground     stay in the foreground and log to stderr\n"
		   "  --check-config   validate the configuration and exit\n"
		   "  --measure        print this host's measurement (for the IVT) and exit\n",
		DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "measure", no_argument, NULL, 'm' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct smigd d = { .listen_fd = -1, .ctl_fd = -1, .sig_fd = -1 };
	const char *config = DEFAULT_CONFIG;
	bool foreground = false;
	bool check = false;
	bool measure = false;
	int c;
	int rc;

	/*
	 * Nothing the starter left open (a lock, a pipe, a terminal) stays open
	 * in the daemon or reaches its QEMUs and swtpms: they would hold it for
	 * as long as they live.
	 */
	closefrom(3);
	while ((c = getopt_long(argc, argv, "c:fkmVh", opts, NULL)) != -1) {
		switch (c) {
		case 'm': measure = check = true; break;
		case 'c': config = optarg; break;
		case 'f': foreground = true; break;
		case 'k': check = true; break;
		case 'V': printf("smigd %s\n", SMIG_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	smig_log_init("smigd", SMIG_LOG_INFO, false);
	if (smig_log_stop_at(getenv("SMIG_STOP_AT")) < 0) { /* fault tests: stop at these events */
		fprintf(stderr, "smigd: SMIG_STOP_AT is set, but this smigd was built without stop "
				"points (meson -Dstop_points=true, as make check's sanitizer build "
				"is); unset it\n");
		return 2;
	}
	d.started = time(NULL);
	rc = smigd_start(&d, config, check, measure);
	if (rc == 0 && measure) {
		/* printed by attest_print_measurement */
	} else if (rc == 0 && check) {
		printf("%s: configuration ok (%zu hosts)\n", config, d.hosts.n);
	} else if (rc == 0) {
		if (!foreground) {
			rc = daemonize();
			smig_log_init("smigd", d.cfg.log_level, true);
		}
		if (rc == 0) {
			smig_info("event=started host=%s version=%s pid=%d", d.cfg.host, SMIG_VERSION,
				  (int)getpid());
			rc = loop_run(d.loop);
		}
	}
	smigd_stop(&d);
	if (rc == 0 && !check)
		smig_info("event=stopped");
	return rc == 0 ? 0 : 1;
}
