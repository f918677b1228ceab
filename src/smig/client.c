/*
 * client.c - connect to smigd's control socket, send a request line, read
 * the reply line.
 */
#include "client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX ((size_t)4 * 1024 * 1024)

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "smig: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "smig: cannot connect to smigd at %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Bytes received from smigd that have not been handed out as lines yet. */
struct linebuf {
	char *buf;
	size_t len;
	size_t cap;
};

/* Takes the next line (without its newline) out of lb into a malloc'd string. */
static char *take_line(struct linebuf *lb, size_t *len)
{
	char *nl = lb->len ? memchr(lb->buf, '\n', lb->len) : NULL;
	char *line;

	if (nl == NULL)
		return NULL;
	*len = (size_t)(nl - lb->buf);
	line = malloc(*len + 1);
	if (line == NULL)
		return NULL;
	memcpy(line, lb->buf, *len);
	line[*len] = '\0';
	memmove(lb->buf, nl + 1, lb->len - *len - 1);
	lb->len -= *len + 1;
	return line;
}

/* Reads one line from smigd, waiting at most timeout_ms (< 0: for ever). */
static char *read_line(int fd, struct linebuf *lb, int timeout_ms, size_t *len)
{
	long deadline = now_ms() + timeout_ms;
	char *line;

	while ((line = take_line(lb, len)) == NULL) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = timeout_ms < 0 ? 1 : deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, timeout_ms < 0 ? -1 : (int)left) <= 0) {
			if (left > 0 && errno == EINTR)
				continue;
			fprintf(stderr, "smig: no reply from smigd within %d ms\n", timeout_ms);
			return NULL;
		}
		if (lb->len == lb->cap) {
			size_t ncap = lb->cap ? lb->cap * 2 : 4096;
			char *nb = ncap <= REPLY_MAX ? realloc(lb->buf, ncap) : NULL;
			if (nb == NULL) {
				fprintf(stderr, "smig: reply too large\n");
				return NULL;
			}
			lb->buf = nb;
			lb->cap = ncap;
		}
		r = recv(fd, lb->buf + lb->len, lb->cap - lb->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "smig: smigd closed the connection\n");
			return NULL;
		}
		lb->len += (size_t)r;
	}
	return line;
}

int client_call(const char *socket_path, const char *cmd, json_t *args, int timeout_ms,
		json_t **reply)
{
	return client_call_progress(socket_path, cmd, args, timeout_ms, NULL, NULL, reply);
}

int client_call_progress(const char *socket_path, const char *cmd, json_t *args,
			 int timeout_ms, client_progress_fn progress, void *arg, json_t **reply)
{
	json_t *req = json_pack("{s:i,s:s,s:o}", "id", 1, "cmd", cmd, "args",
				args ? args : json_object());
	json_error_t jerr;
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	struct linebuf lb = { 0 };
	char *line;
	size_t len = 0;
	int fd;

	json_decref(req);
	if (text == NULL)
		return EXIT_ERROR;
	fd = client_connect(socket_path);
	if (fd >= 0 && (send_all(fd, text, strlen(text)) < 0 || send_all(fd, "\n", 1) < 0) &&
	    errno != EPIPE && errno != ECONNRESET) {
		fprintf(stderr, "smig: cannot send to smigd: %s\n", strerror(errno));
		close(fd);
		fd = -1;
	}
	/* a refused connection (control.per_uid) has its reason waiting: read it */
	free(text);
	if (fd < 0)
		return EXIT_ERROR;
	for (;;) {
		line = read_line(fd, &lb, timeout_ms, &len);
		if (line == NULL) {
			free(lb.buf);
			close(fd);
			return EXIT_ERROR;
		}
		*reply = json_loadb(line, len, 0, &jerr);
		free(line);
		if (*reply == NULL || !json_is_object(*reply)) {
			fprintf(stderr, "smig: malformed reply from smigd: %s\n",
				*reply ? "not an object" : jerr.text);
			json_decref(*reply);
			free(lb.buf);
			close(fd);
			return EXIT_ERROR;
		}
		if (json_object_get(*reply, "progress") == NULL)
			break;
		if (progress)
			progress(arg, json_object_get(*reply, "progress"));
		json_decref(*reply);
	}
	free(lb.buf);
	close(fd);
	return 0;
}

int client_exit_code(const char *code)
{
	static const struct {
		const char *code;
		int exit;
	} map[] = {
		{ "denied", EXIT_DENIED },
		{ "unreachable", EXIT_PEER },
		{ "untrusted", EXIT_PEER },
		{ "timeout", EXIT_PEER },
		{ "migration_failed", EXIT_MIGRATION },
		{ "guest_crashed", EXIT_MIGRATION },
		{ "guest_unresponsive", EXIT_MIGRATION },
		{ "capacity", EXIT_PEER },
		{ "no_target", EXIT_PEER },
		{ "resources", EXIT_PEER },
	};

	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].exit;
	return EXIT_ERROR;
}
