/*
 * ctlcall.c - smig-ctl SOCKET JSON: sends one raw request line to a smigd
 * control socket and prints its final reply (the first line with "ok"),
 * keeping its side open until then: a request answered later (a QMP round
 * trip, a peer's answer) needs a client that has not hung up. For tests
 * that speak to commands the CLI does not have (test builds' debug.*).
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[65536];
	size_t used = 0;
	int fd;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: smig-ctl SOCKET JSON\n");
		return 2;
	}
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("smig-ctl: connect");
		return 1;
	}
	if (write(fd, argv[2], strlen(argv[2])) < 0 || write(fd, "\n", 1) != 1) {
		perror("smig-ctl: write");
		return 1;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char *nl;
		ssize_t n;

		if (poll(&p, 1, 60000) <= 0 || used == sizeof(buf) - 1)
			break;
		n = read(fd, buf + used, sizeof(buf) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		buf[used] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			if (strstr(buf, "\"ok\"")) {
				puts(buf);
				return 0;
			}
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used + 1);
		}
	}
	fprintf(stderr, "smig-ctl: no reply\n");
	return 1;
}
