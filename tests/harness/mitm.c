/*
 * mitm.c - a man in the middle for tests: a TCP relay between a smig host
 * and its peer that can damage or record the stream, and a replayer.
 *
 *   smig-mitm relay LISTEN_PORT TO_ADDR TO_PORT [--flip-after N] [--flip-once]
 *                  [--record FILE]
 *       relays every connection (one child process each); with --flip-after
 *       it flips one bit of the client-to-server byte at offset N (with
 *       --flip-once only in the first connection to get that far); with
 *       --record it appends the client-to-server bytes to FILE.
 *   smig-mitm replay TO_ADDR TO_PORT FILE
 *       connects and sends FILE's bytes as if it were the recorded client.
 *
 * Listens on 127.0.0.1 or, with SMIG_MITM_ADDR, on that address only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A number from the command line, or exit with a message. */
static long long number(const char *s, long long lo, long long hi)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "smig-mitm: bad number \"%s\"\n", s);
		exit(2);
	}
	return v;
}

static int tcp_connect(const char *addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("smig-mitm: connect");
		exit(1);
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* --flip-once: shared by the relay's children; the first to flip sets it */
static atomic_int *flipped;

static void relay(int client, const char *to, int port, long long flip_at, int rec)
{
	int server = tcp_connect(to, port);
	long long sent = 0;
	char buf[65536];

	for (;;) {
		struct pollfd p[2] = { { .fd = client, .events = POLLIN },
				       { .fd = server, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(client, buf, sizeof(buf));
			if (r <= 0)
				break;
			if (flip_at >= 0 && sent <= flip_at && flip_at < sent + r &&
			    (flipped == NULL || atomic_exchange(flipped, 1) == 0)) {
				buf[flip_at - sent] ^= 0x04;
				fprintf(stderr, "smig-mitm: flipped a bit at byte %lld\n", flip_at);
			}
			if (rec >= 0 && write_all(rec, buf, (size_t)r) < 0)
				break;
			sent += r;
			if (write_all(server, buf, (size_t)r) < 0)
				break;
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(server, buf, sizeof(buf));
			if (r <= 0 || write_all(client, buf, (size_t)r) < 0)
				break;
		}
	}
	close(server);
	close(client);
}

static int cmd_relay(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *bind_addr = getenv("SMIG_MITM_ADDR");
	long long flip_at = -1;
	int rec = -1;
	int one = 1;
	int lfd;

	for (int i = 5; i < argc; i++) {
		if (strcmp(argv[i], "--flip-after") == 0 && i + 1 < argc) {
			flip_at = number(argv[++i], 0, 1LL << 50);
		} else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc) {
			rec = open(argv[++i], O_WRONLY | O_CREAT | O_APPEND, 0600);
		} else if (strcmp(argv[i], "--flip-once") == 0) {
			flipped = mmap(NULL, sizeof(*flipped), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			if (flipped == MAP_FAILED) {
				perror("smig-mitm: mmap");
				return 1;
			}
			atomic_init(flipped, 0);
		}
	}
	sa.sin_port = htons((uint16_t)number(argv[2], 1, 65535));
	inet_pton(AF_INET, bind_addr ? bind_addr : "127.0.0.1", &sa.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0) {
		perror("smig-mitm: listen");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			continue;
		if (fork() == 0) {
			close(lfd);
			relay(c, argv[3], (int)number(argv[4], 1, 65535), flip_at, rec);
			_exit(0);
		}
		close(c);
	}
}

static int cmd_replay(char **argv)
{
	int fd = tcp_connect(argv[2], (int)number(argv[3], 1, 65535));
	int in = open(argv[4], O_RDONLY);
	char buf[65536];
	ssize_t r;

	if (in < 0) {
		perror(argv[4]);
		return 1;
	}
	while ((r = read(in, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, (size_t)r) < 0)
			break;
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "relay") == 0)
		return cmd_relay(argc, argv);
	if (argc == 5 && strcmp(argv[1], "replay") == 0)
		return cmd_replay(argv);
	fprintf(stderr, "usage: smig-mitm relay LISTEN_PORT TO_ADDR TO_PORT [--flip-after N] "
			"[--flip-once] [--record FILE]\n       smig-mitm replay TO_ADDR TO_PORT FILE\n");
	return 2;
}
