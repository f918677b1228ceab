/*
 * delay.c - smig-delay QUEUE MS: holds every packet the kernel queues to
 * netfilter queue QUEUE for MS milliseconds, then lets it go, in order.
 * With an iptables rule sending a host's outgoing packets to the queue
 * (-j NFQUEUE --queue-num QUEUE) that host's link gains MS of latency: the
 * fault matrix's "200 ms delay" on kernels without sch_netem.
 *
 * Packets are held in the kernel; only their ids and due times are kept
 * here. A queue that fills (QUEUE_MAX) drops, as a full netem queue would.
 * SIGTERM ends it; the kernel then drops what is still queued.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX 16384u

struct held {
	uint32_t id;
	uint64_t due_ms;
};

static struct held ring[QUEUE_MAX];
static size_t head, count;
static uint64_t delay_ms;
static volatile sig_atomic_t stop;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
		     void *arg)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t id;

	(void)msg;
	(void)arg;
	if (ph == NULL)
		return 0;
	id = ntohl(ph->packet_id);
	if (count == QUEUE_MAX)
		return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
	ring[(head + count) % QUEUE_MAX] = (struct held){ .id = id, .due_ms = now_ms() + delay_ms };
	count++;
	return 0;
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct nfq_handle *h;
	struct nfq_q_handle *qh;
	char buf[65536] __attribute__((aligned));
	long queue;
	int fd;

	if (argc != 3 || (queue = strtol(argv[1], NULL, 10)) < 0 || queue > 65535 ||
	    (delay_ms = strtoull(argv[2], NULL, 10)) == 0) {
		fprintf(stderr, "usage: smig-delay QUEUE MS\n");
		return 2;
	}
	h = nfq_open();
	if (h == NULL) {
		fprintf(stderr, "smig-delay: nfq_open: %s (root, and a kernel with "
				"NETFILTER_NETLINK_QUEUE?)\n", strerror(errno));
		return 1;
	}
	qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
	if (qh == NULL || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
		fprintf(stderr, "smig-delay: cannot bind queue %ld: %s\n", queue, strerror(errno));
		return 1;
	}
	(void)nfq_set_queue_maxlen(qh, QUEUE_MAX);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	fd = nfq_fd(h);
	printf("smig-delay: queue %ld, %llu ms\n", queue, (unsigned long long)delay_ms);
	fflush(stdout);
	while (!stop) {
		uint64_t now = now_ms();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int timeout = -1;

		while (count > 0 && ring[head].due_ms <= now) {
			(void)nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
			head = (head + 1) % QUEUE_MAX;
			count--;
		}
		if (count > 0)
			timeout = (int)(ring[head].due_ms - now);
		if (poll(&p, 1, timeout) > 0) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n > 0)
				(void)nfq_handle_packet(h, buf, (int)n);
			else if (n < 0 && errno == ENOBUFS)
				fprintf(stderr, "smig-delay: the kernel dropped queued packets "
						"(ENOBUFS)\n");
		}
	}
	nfq_destroy_queue(qh);
	nfq_close(h);
	return 0;
}
