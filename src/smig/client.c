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

/* Reads one line (without the newline) into a malloc'd buffer. */
static char *read_line(int fd, int timeout_ms, size_t *len)
{
	long deadline = now_ms() + timeout_ms;
	size_t cap = 4096;
	size_t n = 0;
	char *buf = malloc(cap);

	while (buf) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - now_ms();
		char *nl;
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			if (left > 0 && errno == EINTR)
				continue;
			fprintf(stderr, "smig: no reply from smigd within %d ms\n", timeout_ms);
			break;
		}
		if (n == cap) {
			char *nb = cap < REPLY_MAX ? realloc(buf, cap * 2) : NULL;
			if (nb == NULL) {
				fprintf(stderr, "smig: reply too large\n");
				break;
			}
			buf = nb;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "smig: smigd closed the connection\n");
			break;
		}
		nl = memchr(buf + n, '\n', (size_t)r);
		n += (size_t)r;
		if (nl) {
			*len = (size_t)(nl - buf);
			return buf;
		}
	}
	free(buf);
	return NULL;
}

int client_call(const char *socket_path, const char *cmd, json_t *args, int timeout_ms,
		json_t **reply)
{
	json_t *req = json_pack("{s:i,s:s,s:o}", "id", 1, "cmd", cmd, "args",
				args ? args : json_object());
	json_error_t jerr;
	char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	char *line;
	size_t len = 0;
	int fd;

	json_decref(req);
	if (text == NULL)
		return EXIT_ERROR;
	fd = client_connect(socket_path);
	if (fd < 0 || send_all(fd, text, strlen(text)) < 0 || send_all(fd, "\n", 1) < 0) {
		if (fd >= 0)
			fprintf(stderr, "smig: cannot send to smigd: %s\n", strerror(errno));
		free(text);
		if (fd >= 0)
			close(fd);
		return EXIT_ERROR;
	}
	free(text);
	line = read_line(fd, timeout_ms, &len);
	close(fd);
	if (line == NULL)
		return EXIT_ERROR;
	*reply = json_loadb(line, len, 0, &jerr);
	free(line);
	if (*reply == NULL || !json_is_object(*reply)) {
		fprintf(stderr, "smig: malformed reply from smigd: %s\n", jerr.text);
		json_decref(*reply);
		return EXIT_ERROR;
	}
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
	};

	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].exit;
	return EXIT_ERROR;
}
