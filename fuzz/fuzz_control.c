/*
 * fuzz_control.c - the control API of a whole smigd, in process, driven by
 * sequences of client bytes: request lines split anywhere, several per
 * write, pauses between writes so that long requests (follow, ping,
 * migrate) run while more arrive, and the client hanging up in the middle.
 *
 * One daemon serves every input, as one smigd serves clients for weeks:
 * smigd_start() on the configuration fuzz/control-setup.sh made
 * (SMIG_FUZZ_CONTROL names it) with an empty state directory. Each input
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
 * It aborts when a reply is not one JSON object per line or when there are
 * more final replies than requests; ASan and UBSan catch the rest, and
 * LeakSanitizer what a request or a hang-up leaves behind.
 */
#include <fcntl.h>
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

#include "log.h"
#include "smigd.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct smigd d = { .listen_fd = -1, .ctl_fd = -1, .sig_fd = -1 };
static char config[4096];
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
	if (smigd_start(&d, config, false, false) < 0) {
		fprintf(stderr, "fuzz_control: smigd did not start on %s\n", config);
		exit(1);
	}
	return 0;
}

struct replies {
	char buf[1 << 16];
	size_t len;
	unsigned finals;
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
			json_t *j = json_loadb(r->buf, line, 0, &jerr);

			if (!json_is_object(j)) {
				fprintf(stderr, "fuzz_control: reply is not a JSON object: %.*s\n",
					(int)line, r->buf);
				abort();
			}
			r->finals += json_object_get(j, "ok") != NULL;
			if (show)
				fprintf(stderr, "reply: %.*s\n", (int)line, r->buf);
			json_decref(j);
			memmove(r->buf, nl + 1, r->len - line - 1);
			r->len -= line + 1;
		}
		if (r->len == sizeof(r->buf) - 1)
			r->len = 0; /* a reply longer than we keep: not judged */
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

	for (int i = 0; i < 50 && d.clients != NULL; i++)
		(void)loop_run_once(d.loop, 2);
	if (d.clients != NULL) {
		fprintf(stderr, "fuzz_control: a client that hung up is still held\n");
		abort();
	}
	while ((vm = d.vms) != NULL) {
		if (vm_undefine(&d, vm, err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz_control: cannot undefine %s: %s\n", vm_spec(vm)->name,
				err);
			abort();
		}
	}
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
		for (size_t i = 0; i < n; i++)
			lines += data[off + i] == '\n';
		if (write(sv[1], data + off, n) < 0)
			break; /* the daemon hung up on us */
		off += n;
		turn(sv[1], &r, 2, 0);
	}
	/* the client hangs up; what it started must end cleanly */
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 8 && d.clients != NULL; i++)
		turn(sv[1], &r, 1, 1);
	turn(sv[1], &r, 1, 0);
	if (r.finals > lines) {
		fprintf(stderr, "fuzz_control: %u replies to %u requests\n", r.finals, lines);
		abort();
	}
	close(sv[1]);
	reset();
	return 0;
}
