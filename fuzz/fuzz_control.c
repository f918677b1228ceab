/*
 * fuzz_control.c - the control API of a whole smigd, in process, driven by
 * sequences of client bytes: request lines split anywhere, several per
 * write, pauses between writes so that long requests (follow, ping,
 * migrate) run while more arrive, and the client hanging up in the middle.
 *
 * One daemon serves every input, as one smigd serves clients for weeks:
 * smigd_start() of a worker (unsandboxed) in this process, with a warden
 * of its own in a child (warden_serve), on the configuration
 * fuzz/control-setup.sh made (SMIG_FUZZ_CONTROL names it) with an empty
 * state directory. Each input
 * is one client, handed in with chosen credentials; after it hangs up the
 * daemon must have let it go, and every VM it defined is undefined again.
 * The client is "nobody", whose role may do everything but start VMs and
 * enrol golden values (so no QEMU is spawned and the IVT stays as made),
 * or "daemon", who may do nothing.
 *
 * Input: u8 who (bit 0: daemon) then records u8 n + n bytes written to the
 * socket; n = 0 is a pause (the loop turns for up to 6 ms). Seeds come from
 * real sessions (the CLI's requests in the integration tests, recorded by
 * smigd's SMIG_TRACE_DIR in test builds).
 *
 * It aborts when a reply is not one JSON object per line, when there are
 * more final replies than requests, or when after the input the daemon no
 * longer answers a status request from a new client; ASan and UBSan catch the rest, and
 * LeakSanitizer what a request or a hang-up leaves behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <ftw.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "control/control.h"
#include "log.h"
#include "vm/vm.h"
#include "warden/warden.h"
#include "worker/worker.h"

#include <sys/prctl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct smigd d = { .sig_fd = -1 };
static char config[4096];
/* Every input ends with this request on a fresh client: a wedged daemon fails. */
#define CLOSING "{\"id\":\"fuzz-closing\",\"cmd\":\"status\"}\n"
static json_t *closing_id;
static bool show; /* SMIG_FUZZ_SHOW=1: every reply to stderr */
static char state[4096];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("SMIG_FUZZ_CONTROL");
	pid_t warden;
	int sv[2];

	(void)argc;
	(void)argv;
	if (dir == NULL || *dir == '\0') {
		fprintf(stderr, "fuzz_control: SMIG_FUZZ_CONTROL must name a directory made by "
				"fuzz/control-setup.sh DIR\n");
		exit(2);
	}
	show = getenv("SMIG_FUZZ_SHOW") != NULL;
	snprintf(config, sizeof(config), "%s/h1.json", dir);
	snprintf(state, sizeof(state), "%s/state-h1", dir);
	if (access(config, R_OK) != 0) {
		fprintf(stderr, "fuzz_control: %s is missing: run fuzz/control-setup.sh %s\n",
			config, dir);
		exit(2);
	}
	(void)nftw(state, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	d.started = time(NULL);
	/* the daemon's warden: a process of its own, as in smigd, ending with this one */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("fuzz_control: socketpair");
		exit(1);
	}
	warden = fork();
	if (warden == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		_exit(warden_serve(config, sv[1]));
	}
	close(sv[1]);
	if (warden < 0 || smigd_start(&d, config, false, sv[0], false) < 0) {
		fprintf(stderr, "fuzz_control: smigd did not start on %s\n", config);
		exit(1);
	}
	/* the daemon's signalfd would take libFuzzer's SIGINT and stop the loop */
	{
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
	}
	closing_id = json_pack("{s:s}", "id", "fuzz-closing");
	return 0;
}

struct replies {
	char buf[1 << 16];
	size_t len;
	unsigned finals;
	bool skipping;     /* in a reply longer than buf: not judged, up to its end */
	bool status_seen;  /* the closing status request was answered */
};

/* Takes what the daemon wrote; every complete line must be one JSON object. */
static void take_replies(int fd, struct replies *r)
{
	for (;;) {
		ssize_t n = read(fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len);
		char *nl;

		if (n <= 0)
			break;
		r->len += (size_t)n;
		while ((nl = memchr(r->buf, '\n', r->len)) != NULL) {
			size_t line = (size_t)(nl - r->buf);
			json_error_t jerr;
			json_t *j;

			if (r->skipping) {
				r->skipping = false;
				memmove(r->buf, nl + 1, r->len - line - 1);
				r->len -= line + 1;
				continue;
			}
			j = json_loadb(r->buf, line, 0, &jerr);
			if (!json_is_object(j)) {
				fprintf(stderr, "fuzz_control: reply is not a JSON object: %.*s\n",
					(int)line, r->buf);
				abort();
			}
			r->finals += json_object_get(j, "ok") != NULL;
			r->status_seen |= json_equal(json_object_get(j, "id"),
						     json_object_get(closing_id, "id")) &&
					  json_object_get(j, "ok") != NULL;
			if (show)
				fprintf(stderr, "reply: %.*s\n", (int)line, r->buf);
			json_decref(j);
			memmove(r->buf, nl + 1, r->len - line - 1);
			r->len -= line + 1;
		}
		if (r->len == sizeof(r->buf) - 1) {
			r->len = 0; /* a reply longer than we keep: not judged */
			r->skipping = true;
		}
	}
}

static void turn(int fd, struct replies *r, int rounds, int wait_ms)
{
	for (int i = 0; i < rounds; i++) {
		(void)loop_run_once(d.loop, wait_ms);
		if (fd >= 0)
			take_replies(fd, r);
	}
}

/* What one client left: nothing once it is gone, and its VMs undefined. */
static void reset(void)
{
	char err[512];
	struct vm *vm;

	for (int i = 0; i < 50 && ctl_clients(&d) != 0; i++)
		(void)loop_run_once(d.loop, 2);
	if (ctl_clients(&d) != 0) {
		fprintf(stderr, "fuzz_control: a client that hung up is still held\n");
		abort();
	}
	while ((vm = vm_first(&d)) != NULL) {
		if (vm_undefine(&d, vm, err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_control: cannot undefine %s: %s\n", vm_spec(vm)->name,
				err);
			abort();
		}
	}
}

/* Writes a whole record, letting the daemon read; false once it hung up. */
static bool feed(int fd, struct replies *r, const uint8_t *p, size_t n, unsigned *lines)
{
	size_t done = 0;

	for (int tries = 0; done < n && tries < 50; tries++) {
		ssize_t w = write(fd, p + done, n - done);

		if (w < 0 && errno != EAGAIN)
			return false;
		for (ssize_t i = 0; i < w; i++)
			*lines += p[done + (size_t)i] == '\n';
		if (w > 0)
			done += (size_t)w;
		turn(fd, r, 2, 0);
	}
	return true;
}

/* A fresh client asks for status: the daemon must still answer. */
static void still_answers(struct ucred *cred)
{
	struct replies *r = calloc(1, sizeof(*r));
	int sv[2];

	if (r == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    ctl_client_add(&d, sv[0], cred, &cred->gid, 1) < 0 ||
	    write(sv[1], CLOSING, strlen(CLOSING)) != (ssize_t)strlen(CLOSING))
		abort();
	for (int i = 0; i < 200 && !r->status_seen; i++)
		turn(sv[1], r, 1, 2);
	if (!r->status_seen) {
		fprintf(stderr, "fuzz_control: the daemon no longer answers a status request\n");
		abort();
	}
	close(sv[1]);
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ucred cred = { .pid = getpid(), .uid = 65534, .gid = 65534 };
	static struct replies r;
	unsigned lines = 0;
	size_t off = 1;
	int sv[2];

	if (size < 1)
		return 0;
	if (data[0] & 1)
		cred.uid = cred.gid = 1; /* daemon: no binding */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    ctl_client_add(&d, sv[0], &cred, &cred.gid, 1) < 0)
		abort();
	memset(&r, 0, sizeof(r));
	while (off < size) {
		size_t n = data[off++];

		if (n > size - off)
			n = size - off;
		if (n == 0) {
			turn(sv[1], &r, 3, 2);
			continue;
		}
		if (!feed(sv[1], &r, data + off, n, &lines))
			break; /* it hung up on us */
		off += n;
	}
	/* the client hangs up; what it started must end cleanly */
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 8 && ctl_clients(&d) != 0; i++)
		turn(sv[1], &r, 1, 1);
	turn(sv[1], &r, 1, 0);
	if (r.finals > lines) {
		fprintf(stderr, "fuzz_control: %u replies to %u requests\n", r.finals, lines);
		abort();
	}
	close(sv[1]);
	reset();
	cred.uid = cred.gid = 65534; /* nobody may see the status */
	still_answers(&cred);
	reset();
	return 0;
}
