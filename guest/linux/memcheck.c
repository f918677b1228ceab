/*
 * memcheck.c - init (PID 1) of the Linux test guest: a Debian kernel that
 * boots into this one static program, which owns a working set of guest
 * memory, rewrites pages of it at a steady rate and verifies every page.
 *
 * Kernel command line (besides the kernel's own):
 *   memcheck.mib=N   working set in MiB (default 192)
 *   memcheck.rate=N  pages rewritten per second (default 20000; 0 = idle)
 *   memcheck.hb=MS   heartbeat period in ms (default 250)
 *   memcheck.seed=N  pattern seed (default 1)
 *   memcheck.spin=1  a second thread that only burns CPU (a busy neighbour
 *                    inside the guest, so the scheduler really switches)
 *   memcheck.ip=, memcheck.echo=  the network and its echo service (net.c)
 *   memcheck.efivar=, memcheck.pcr=  a UEFI variable, the vTPM's PCR 0 (efi.c)
 *   memcheck.acpi=off  ignore the ACPI power button (else: power off, power.c)
 *
 * Output on the console (the same lines the freestanding test guest
 * prints, so one checker reads both):
 *   BOOT memcheck mib=<n> rate=<n> seed=<n>
 *   READY pages=<n>
 *   HB <counter> <pages-verified> <errors>
 *   FAIL page <index> gen <g> word <w> want <hex> got <hex>
 * The kernel's own reports (oops, BUG, panic) go to the same console; with
 * pvpanic loaded a kernel panic also reaches QEMU as GUEST_PANICKED.
 */
#define _GNU_SOURCE
#include "memcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define WORDS (PAGE / 8)
#define MAX_FAIL_LINES 20

struct params {
	unsigned long mib;
	unsigned long rate;
	unsigned long hb_ms;
	unsigned long seed;
	unsigned long spin;
	unsigned long echo;
	unsigned long pcr;
	char ip[32];
	char spoof[32];
	char efivar[64];
	char acpi[8];
};

static struct params P = { 192, 20000, 250, 1, 0, 7, 0, "", "", "", "" };
static int con = -1;

void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (con >= 0 && write(con, line, (size_t)n) < 0)
		return;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t pattern(uint64_t page, uint64_t gen, uint64_t word)
{
	uint64_t x = (P.seed * 0x9E3779B97F4A7C15ull) ^ (page << 20) ^ (gen << 44) ^ word;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static void param(const char *cmdline, const char *key, unsigned long *v)
{
	const char *p = strstr(cmdline, key);

	if (p != NULL && (p == cmdline || p[-1] == ' '))
		*v = strtoul(p + strlen(key), NULL, 10);
}

static void read_params(void)
{
	char buf[2048] = "";
	int fd = open("/proc/cmdline", O_RDONLY);

	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	param(buf, "memcheck.mib=", &P.mib);
	param(buf, "memcheck.rate=", &P.rate);
	param(buf, "memcheck.hb=", &P.hb_ms);
	param(buf, "memcheck.seed=", &P.seed);
	param(buf, "memcheck.spin=", &P.spin);
	param(buf, "memcheck.echo=", &P.echo);
	param(buf, "memcheck.pcr=", &P.pcr);
	{
		const char *ip = strstr(buf, "memcheck.ip=");

		const char *sp = strstr(buf, "memcheck.spoof=");

		if (ip && (ip == buf || ip[-1] == ' '))
			sscanf(ip + 12, "%31[0-9./]", P.ip);
		const char *ev = strstr(buf, "memcheck.efivar=");

		if (sp && (sp == buf || sp[-1] == ' '))
			sscanf(sp + 15, "%31[0-9.:]", P.spoof);
		if (ev && (ev == buf || ev[-1] == ' '))
			sscanf(ev + 16, "%63[A-Za-z0-9._-]", P.efivar);
		const char *ac = strstr(buf, "memcheck.acpi=");

		if (ac && (ac == buf || ac[-1] == ' '))
			sscanf(ac + 14, "%7[a-z]", P.acpi);
	}
	if (P.hb_ms == 0)
		P.hb_ms = 250;
}

/* pvpanic: the core and the ACPI (ISA port 0x505) front end */
void load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
		say("memcheck: loading %s: %s\n", path, strerror(errno));
	close(fd);
}

static void *spin(void *arg)
{
	volatile uint64_t x = 0;

	(void)arg;
	for (;;)
		x++;
	return NULL;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

int main(void)
{
	uint64_t *ws, npages, counter = 0, verified = 0, errors = 0, dirtied = 0;
	uint32_t *gen;
	uint64_t sweep = 0, t0, next_hb;
	unsigned fails = 0;

	mkdir("/proc", 0555);
	mkdir("/dev", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	con = open("/dev/console", O_WRONLY | O_NOCTTY);
	read_params();
	load_module("/lib/modules/pvpanic.ko");
	load_module("/lib/modules/pvpanic-mmio.ko");
	if (strcmp(P.acpi, "off") != 0)
		power_start();
	net_start(P.ip, P.echo, P.spoof);
	efi_check(P.efivar);
	if (P.pcr)
		pcr_start();
	npages = (uint64_t)P.mib * 256;
	rng_state ^= P.seed * 0x2545F4914F6CDD1Dull;
	say("BOOT memcheck mib=%lu rate=%lu seed=%lu\n", P.mib, P.rate, P.seed);
	ws = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	gen = calloc(npages ? npages : 1, sizeof(*gen));
	if (ws == MAP_FAILED || gen == NULL) {
		say("FAIL config: cannot map %lu MiB\n", P.mib);
		for (;;)
			pause();
	}
	for (uint64_t p = 0; p < npages; p++) {
		gen[p] = 1;
		for (uint64_t w = 0; w < WORDS; w++)
			ws[p * WORDS + w] = pattern(p, 1, w);
	}
	if (P.spin) {
		pthread_t t;

		pthread_create(&t, NULL, spin, NULL);
	}
	say("READY pages=%llu\n", (unsigned long long)npages);
	t0 = now_ms();
	next_hb = t0;
	for (;;) {
		uint64_t now = now_ms();
		uint64_t target = P.rate * (now - t0) / 1000;

		/* dirty: bump a random page's generation, rewrite it */
		for (unsigned n = 0; npages && dirtied < target && n < 4096; n++, dirtied++) {
			uint64_t p = rng() % npages;

			gen[p]++;
			for (uint64_t w = 0; w < WORDS; w++)
				ws[p * WORDS + w] = pattern(p, gen[p], w);
		}
		/* verify: a chunk of the sweep, every word */
		for (unsigned i = 0; npages && i < 64; i++) {
			const uint64_t *pg = ws + sweep * WORDS;

			for (uint64_t w = 0; w < WORDS; w++) {
				uint64_t want = pattern(sweep, gen[sweep], w);

				if (pg[w] != want) {
					errors++;
					if (fails++ < MAX_FAIL_LINES)
						say("FAIL page %llu gen %u word %llu want %016llx got %016llx\n",
						    (unsigned long long)sweep, gen[sweep],
						    (unsigned long long)w, (unsigned long long)want,
						    (unsigned long long)pg[w]);
					break;
				}
			}
			verified++;
			sweep = sweep + 1 == npages ? 0 : sweep + 1;
		}
		if (now >= next_hb) {
			counter++;
			say("HB %llu %llu %llu\n", (unsigned long long)counter,
			    (unsigned long long)verified, (unsigned long long)errors);
			next_hb += P.hb_ms;
			if (next_hb < now)
				next_hb = now + P.hb_ms;
		}
		if (dirtied >= target)
			usleep(1000);
	}
}
