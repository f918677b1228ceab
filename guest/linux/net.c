/*
 * net.c - the network side of the Linux test guest's init (memcheck.c):
 * the virtio-net modules, one static IPv4 address on the first Ethernet
 * interface, and a TCP echo service whose connections must survive a
 * migration.
 *
 * Kernel command line:
 *   memcheck.ip=A.B.C.D/NN  address of the first Ethernet interface (none: no network)
 *   memcheck.echo=PORT      TCP echo service on PORT (default 7 when ip is set)
 *   memcheck.spoof=A.B.C.D:PORT
 *                           every 500 ms, three UDP datagrams to A.B.C.D:PORT:
 *                           "legit N" sent normally, "ipspoof N" with another
 *                           source address (.199 of the same network) and
 *                           "macspoof N" with another source MAC: a guest
 *                           trying what its NIC filter must stop
 * Console lines:
 *   NET <ifname> <address>/<prefix> <mac>
 *   ECHO open <peer>  /  ECHO close <peer> <bytes>
 */
#define _GNU_SOURCE
#include "memcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const net_modules[] = {
	"virtio_ring.ko", "virtio.ko", "virtio_pci_legacy_dev.ko", "virtio_pci_modern_dev.ko",
	"virtio_pci.ko", "failover.ko", "net_failover.ko", "virtio_net.ko",
};

static int ifreq_set(int sk, const char *name, unsigned long req, struct ifreq *ifr)
{
	snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
	return ioctl(sk, req, ifr);
}

static void set_addr(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = addr;
}

static void link_up(int sk, const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (ifreq_set(sk, name, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		(void)ifreq_set(sk, name, SIOCSIFFLAGS, &ifr);
	}
}

/* The first interface that is not loopback, after the driver has made it. */
static int first_ether(char *name, size_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		struct if_nameindex *ifs = if_nameindex();

		for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
			if (strcmp(i->if_name, "lo") != 0) {
				snprintf(name, len, "%s", i->if_name);
				if_freenameindex(ifs);
				return 0;
			}
		}
		if (ifs)
			if_freenameindex(ifs);
		usleep(50000);
	}
	return -1;
}

static int configure(const char *cidr, char *ifname, size_t len)
{
	char addr[32];
	const char *slash = strchr(cidr, '/');
	unsigned prefix = slash ? (unsigned)atoi(slash + 1) : 24;
	struct in_addr a;
	struct ifreq ifr;
	unsigned char *mac;
	int sk;

	snprintf(addr, sizeof(addr), "%.*s", slash ? (int)(slash - cidr) : (int)strlen(cidr), cidr);
	if (inet_pton(AF_INET, addr, &a) != 1 || prefix > 32)
		return -1;
	sk = socket(AF_INET, SOCK_DGRAM, 0);
	if (sk < 0)
		return -1;
	link_up(sk, "lo");
	if (first_ether(ifname, len) < 0) {
		close(sk);
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	set_addr(&ifr.ifr_addr, a.s_addr);
	(void)ifreq_set(sk, ifname, SIOCSIFADDR, &ifr);
	set_addr(&ifr.ifr_netmask, prefix ? htonl(~0u << (32 - prefix)) : 0);
	(void)ifreq_set(sk, ifname, SIOCSIFNETMASK, &ifr);
	link_up(sk, ifname);
	memset(&ifr, 0, sizeof(ifr));
	(void)ifreq_set(sk, ifname, SIOCGIFHWADDR, &ifr);
	mac = (unsigned char *)ifr.ifr_hwaddr.sa_data;
	say("NET %s %s/%u %02x:%02x:%02x:%02x:%02x:%02x\n", ifname, addr, prefix, mac[0], mac[1],
	    mac[2], mac[3], mac[4], mac[5]);
	close(sk);
	return 0;
}

struct conn {
	int fd;
	char peer[64];
};

static void *echo_conn(void *arg)
{
	struct conn *c = arg;
	unsigned long long total = 0;
	char buf[16384];

	say("ECHO open %s\n", c->peer);
	for (;;) {
		ssize_t r = read(c->fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(c->fd, buf + off, (size_t)(r - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			off += w;
		}
		total += (unsigned long long)r;
	}
out:
	say("ECHO close %s %llu\n", c->peer, total);
	close(c->fd);
	free(c);
	return NULL;
}

static void *echo_server(void *arg)
{
	int port = (int)(long)arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;
	int ls = socket(AF_INET, SOCK_STREAM, 0);

	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 16) < 0) {
		say("FAIL net: cannot listen on port %d: %s\n", port, strerror(errno));
		return NULL;
	}
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int fd = accept(ls, (struct sockaddr *)&peer, &plen);
		struct conn *c;
		pthread_t t;

		if (fd < 0)
			continue;
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		snprintf(c->peer, sizeof(c->peer), "%s:%u", inet_ntoa(peer.sin_addr),
			 ntohs(peer.sin_port));
		if (pthread_create(&t, NULL, echo_conn, c) != 0) {
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

struct spoof {
	char ifname[IFNAMSIZ];
	uint32_t self;    /* our address, network order */
	uint32_t dst;
	uint16_t port;
	uint8_t mac[6];
};

static uint16_t ip_checksum(const uint8_t *h, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One Ethernet frame carrying IPv4/UDP, broadcast at layer 2, from src_mac and src_ip. */
static void raw_udp(int pk, int ifindex, const uint8_t *src_mac, uint32_t src_ip,
		    const struct spoof *sp, const char *text)
{
	uint8_t f[128] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	size_t n = strlen(text), ip_len = 20 + 8 + n;
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6 };
	uint8_t *ip = f + 14, *udp = ip + 20;
	uint16_t c;

	if (14 + ip_len > sizeof(f))
		return;
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ip_len >> 8);
	ip[3] = (uint8_t)ip_len;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &src_ip, 4);
	memcpy(ip + 16, &sp->dst, 4);
	c = ip_checksum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = 0x30;
	udp[1] = 0x39; /* source port 12345 */
	udp[2] = (uint8_t)(sp->port >> 8);
	udp[3] = (uint8_t)sp->port;
	udp[4] = (uint8_t)((8 + n) >> 8);
	udp[5] = (uint8_t)(8 + n);
	memcpy(udp + 8, text, n);
	memset(to.sll_addr, 0xff, 6);
	(void)sendto(pk, f, 14 + ip_len, 0, (struct sockaddr *)&to, sizeof(to));
}

static void *spoofer(void *arg)
{
	struct spoof *sp = arg;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(sp->port),
				   .sin_addr.s_addr = sp->dst };
	uint8_t fake_mac[6] = { 0x52, 0x54, 0x00, 0xde, 0xad, 0x01 };
	uint32_t fake_ip = (sp->self & htonl(0xffffff00u)) | htonl(199);
	int us = socket(AF_INET, SOCK_DGRAM, 0);
	int pk = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
	int ifindex = (int)if_nametoindex(sp->ifname);
	char text[64];

	for (unsigned long n = 1;; n++) {
		snprintf(text, sizeof(text), "legit %lu\n", n);
		(void)sendto(us, text, strlen(text), 0, (struct sockaddr *)&dst, sizeof(dst));
		snprintf(text, sizeof(text), "ipspoof %lu\n", n);
		raw_udp(pk, ifindex, sp->mac, fake_ip, sp, text);
		snprintf(text, sizeof(text), "macspoof %lu\n", n);
		raw_udp(pk, ifindex, fake_mac, sp->self, sp, text);
		usleep(500000);
	}
	return NULL;
}

static void spoof_start(const char *ifname, const char *cidr, const char *target)
{
	static struct spoof sp;
	char addr[32];
	struct ifreq ifr;
	struct in_addr a;
	pthread_t t;
	int sk;

	if (target == NULL || target[0] == '\0' || strchr(target, ':') == NULL)
		return;
	snprintf(addr, sizeof(addr), "%.*s", (int)(strchr(target, ':') - target), target);
	if (inet_pton(AF_INET, addr, &a) != 1)
		return;
	sp.dst = a.s_addr;
	sp.port = (uint16_t)atoi(strchr(target, ':') + 1);
	snprintf(addr, sizeof(addr), "%.*s", (int)strcspn(cidr, "/"), cidr);
	if (inet_pton(AF_INET, addr, &a) != 1)
		return;
	sp.self = a.s_addr;
	snprintf(sp.ifname, sizeof(sp.ifname), "%s", ifname);
	sk = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	if (sk >= 0 && ifreq_set(sk, ifname, SIOCGIFHWADDR, &ifr) == 0)
		memcpy(sp.mac, ifr.ifr_hwaddr.sa_data, 6);
	if (sk >= 0)
		close(sk);
	say("SPOOF to %s every 500 ms\n", target);
	if (pthread_create(&t, NULL, spoofer, &sp) == 0)
		pthread_detach(t);
}

void net_start(const char *cidr, unsigned long echo_port, const char *spoof)
{
	char ifname[IFNAMSIZ];
	pthread_t t;

	if (cidr == NULL || cidr[0] == '\0')
		return;
	for (size_t i = 0; i < sizeof(net_modules) / sizeof(net_modules[0]); i++) {
		char path[128];

		snprintf(path, sizeof(path), "/lib/modules/%s", net_modules[i]);
		load_module(path);
	}
	if (configure(cidr, ifname, sizeof(ifname)) < 0) {
		say("FAIL net: cannot configure %s\n", cidr);
		return;
	}
	if (echo_port && pthread_create(&t, NULL, echo_server, (void *)(long)echo_port) == 0)
		pthread_detach(t);
	spoof_start(ifname, cidr, spoof);
}
