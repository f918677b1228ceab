/*
 * echoclient.c - smig-echoclient: one TCP connection to a guest's echo
 * service, carried through a migration. It sends a numbered byte stream at
 * a steady rate, checks that every byte comes back in order, and says how
 * long the echo ever went quiet.
 *
 *   smig-echoclient ADDR:PORT [--seconds N] [--rate KiB/s] [--until FILE]
 *
 * It stops after N seconds, or once FILE exists (then waits up to 5 s for
 * the echo to catch up). Every second: "t=<ms> sent=<n> echoed=<n>". Last
 * line: "OK sent=<n> echoed=<n> max_gap_ms=<n>" (exit 0), or "FAIL ..."
 * (exit 1) on a wrong byte, a reset, or bytes never echoed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Byte n of the stream: its position, mixed, so a shifted stream shows. */
static uint8_t stream_byte(uint64_t n)
{
	uint64_t x = n * 0x9E3779B97F4A7C15ull;

	return (uint8_t)(x >> 56);
}

static int dial(const char *to)
{
	char host[64];
	const char *colon = strrchr(to, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1, fd;

	if (colon == NULL || (size_t)(colon - to) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - to), to);
	sa.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	for (int tries = 0; fd >= 0 && tries < 100; tries++) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			return fd;
		}
		close(fd);
		usleep(100000);
		fd = socket(AF_INET, SOCK_STREAM, 0);
	}
	return -1;
}

int main(int argc, char **argv)
{
	unsigned long seconds = 3600, rate_kib = 64;
	const char *until = NULL;
	uint64_t sent = 0, echoed = 0, t0, last_echo, next_report, max_gap = 0, stop_at = 0;
	uint8_t buf[16384];
	int fd;

	if (argc < 2) {
		fprintf(stderr, "usage: smig-echoclient ADDR:PORT [--seconds N] [--rate KiB/s] "
				"[--until FILE]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seconds") == 0)
			seconds = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--rate") == 0)
			rate_kib = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--until") == 0)
			until = argv[i + 1];
	}
	fd = dial(argv[1]);
	if (fd < 0) {
		printf("FAIL cannot connect to %s\n", argv[1]);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	t0 = last_echo = now_ms();
	next_report = t0 + 1000;
	for (;;) {
		uint64_t now = now_ms();
		uint64_t due = stop_at ? sent : rate_kib * 1024 * (now - t0) / 1000;
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < due ? POLLOUT : 0) };

		if (!stop_at && (now - t0 >= seconds * 1000 || (until && access(until, F_OK) == 0)))
			stop_at = now;
		if (stop_at && echoed == sent)
			break;
		if (stop_at && now - stop_at > 5000) {
			printf("FAIL sent=%llu echoed=%llu: %llu bytes never came back\n",
			       (unsigned long long)sent, (unsigned long long)echoed,
			       (unsigned long long)(sent - echoed));
			return 1;
		}
		if (poll(&p, 1, 10) < 0 && errno != EINTR)
			break;
		if (p.revents & POLLIN) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r <= 0) {
				printf("FAIL connection %s after %llu bytes echoed\n",
				       r == 0 ? "closed" : strerror(errno), (unsigned long long)echoed);
				return 1;
			}
			for (ssize_t i = 0; i < r; i++, echoed++)
				if (buf[i] != stream_byte(echoed)) {
					printf("FAIL byte %llu came back wrong\n",
					       (unsigned long long)echoed);
					return 1;
				}
			if (now - last_echo > max_gap)
				max_gap = now - last_echo;
			last_echo = now;
		}
		if ((p.revents & POLLOUT) && sent < due) {
			size_t n = due - sent > sizeof(buf) ? sizeof(buf) : (size_t)(due - sent);
			ssize_t w;

			for (size_t i = 0; i < n; i++)
				buf[i] = stream_byte(sent + i);
			w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				printf("FAIL send: %s\n", strerror(errno));
				return 1;
			}
			if (w > 0)
				sent += (uint64_t)w;
		}
		if (now >= next_report) {
			printf("t=%llu sent=%llu echoed=%llu\n", (unsigned long long)(now - t0),
			       (unsigned long long)sent, (unsigned long long)echoed);
			next_report += 1000;
		}
	}
	printf("OK sent=%llu echoed=%llu max_gap_ms=%llu\n", (unsigned long long)sent,
	       (unsigned long long)echoed, (unsigned long long)max_gap);
	close(fd);
	return 0;
}
