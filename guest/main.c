/*
 * main.c - the smig test guest: proves from inside a VM that migration lost
 * nothing.
 *
 * Kernel command line: mem=MiB (working set, default 32), dirty=N|max
 * (pages per second to rewrite, default 0), seed=N, hb=MS (heartbeat
 * period, default 250), corrupt=N (self-test: damage a page behind the
 * verifier's back at heartbeat N), panic_after_pause=MS (self-test: once the
 * VM was stopped for MS ms or more, e.g. across a migration's switch-over,
 * report a panic through the pvpanic port and halt), acpi=off (ignore the
 * ACPI power button).
 *
 * The ACPI power button (QMP system_powerdown) powers the guest off, as an
 * operating system would: it is polled at each heartbeat in the chipset's
 * PM1 status register (PIIX4 or ICH9, wherever the firmware put its PM
 * block), "POWEROFF acpi" goes to the console and the guest enters S5.
 *
 * Every page of the working set holds a pattern derived from (seed, page,
 * generation). Dirtying a page bumps its generation and rewrites it; the
 * verifier sweeps all pages continuously and checks every word against the
 * generation last written. A lost, stale or corrupt page is reported as
 *   FAIL page <index> gen <g> word <w> want <hex> got <hex>
 * The serial heartbeat is
 *   HB <counter> <pages-verified> <errors>
 * With a TPM, each heartbeat extends PCR 16 and reads it back against the
 * guest's own SHA-256 chain ("FAIL vtpm" on mismatch, "VTPM ok <n>" every
 * tenth heartbeat, "VTPM none" at boot without one).
 */
#include "io.h"
#include "sha256.h"
#include "tpm.h"

#include <stdint.h>

#define PAGE 4096u
#define WORDS (PAGE / 4)
#define WS_BASE (16u << 20)
#define MAX_WS_MIB 2048u
#define MAX_PAGES (MAX_WS_MIB * 256u)
#define VERIFY_CHUNK 64u
#define PCR 16u

struct params {
	uint32_t mem_mib;
	uint32_t dirty; /* pages per second; UINT32_MAX for max */
	uint32_t seed;
	uint32_t hb_ms;
	uint32_t corrupt_at;
	uint32_t panic_pause_ms;
	uint32_t acpi_off;
};

static uint32_t gen[MAX_PAGES];
static uint32_t npages;
static struct params P = { 32, 0, 1, 250, 0, 0, 0 };
static uint64_t verified;
static uint64_t errors;
static uint32_t fails_printed;

static uint32_t parse_u32(const char *s, const char **end)
{
	uint32_t v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (uint32_t)(*s++ - '0');
	*end = s;
	return v;
}

static int starts(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

static void parse_cmdline(const char *s)
{
	while (s && *s) {
		const char *end = s;

		if (starts(s, "mem="))
			P.mem_mib = parse_u32(s + 4, &end);
		else if (starts(s, "dirty=max"))
			P.dirty = UINT32_MAX, end = s + 9;
		else if (starts(s, "dirty="))
			P.dirty = parse_u32(s + 6, &end);
		else if (starts(s, "seed="))
			P.seed = parse_u32(s + 5, &end);
		else if (starts(s, "hb="))
			P.hb_ms = parse_u32(s + 3, &end);
		else if (starts(s, "corrupt="))
			P.corrupt_at = parse_u32(s + 8, &end);
		else if (starts(s, "panic_after_pause="))
			P.panic_pause_ms = parse_u32(s + 18, &end);
		else if (starts(s, "acpi=off"))
			P.acpi_off = 1, end = s + 8;
		while (*end && *end != ' ')
			end++;
		while (*end == ' ')
			end++;
		s = end;
	}
	if (P.hb_ms == 0)
		P.hb_ms = 250;
}

static uint32_t page_base(uint32_t page, uint32_t g)
{
	uint32_t x = P.seed ^ (page * 0x9E3779B1u) ^ (g * 0x85EBCA77u);

	x ^= x >> 15;
	x *= 0x2C1B3C6Du;
	x ^= x >> 12;
	x *= 0x297A2D39u;
	x ^= x >> 15;
	return x;
}

static volatile uint32_t *page_ptr(uint32_t page)
{
	return (volatile uint32_t *)(WS_BASE + page * PAGE);
}

static void page_write(uint32_t page)
{
	volatile uint32_t *w = page_ptr(page);
	uint32_t base = page_base(page, gen[page]);

	for (uint32_t j = 0; j < WORDS; j++)
		w[j] = base ^ (j * 0x01000193u);
}

static void page_verify(uint32_t page)
{
	volatile uint32_t *w = page_ptr(page);
	uint32_t base = page_base(page, gen[page]);

	for (uint32_t j = 0; j < WORDS; j++) {
		uint32_t want = base ^ (j * 0x01000193u);
		if (w[j] != want) {
			errors++;
			if (fails_printed++ < 8) {
				put_str("FAIL page ");
				put_u64(page);
				put_str(" gen ");
				put_u64(gen[page]);
				put_str(" word ");
				put_u64(j);
				put_str(" want ");
				put_hex32(want);
				put_str(" got ");
				put_hex32(w[j]);
				put_str("\n");
			}
			return;
		}
	}
	verified++;
}

struct vtpm {
	int present;
	int failed;
	uint8_t chain[32];
	uint64_t extends;
};

static void vtpm_init(struct vtpm *t)
{
	t->present = tpm_present();
	if (!t->present) {
		put_str("VTPM none\n");
		return;
	}
	if (tpm_startup() < 0 || tpm_read(PCR, t->chain) < 0) {
		put_str("FAIL vtpm startup\n");
		t->failed = 1;
		return;
	}
	put_str("VTPM present\n");
}

static void vtpm_beat(struct vtpm *t, uint64_t counter)
{
	struct sha256 s;
	uint8_t digest[32];
	uint8_t pcr[32];

	if (!t->present || t->failed)
		return;
	sha256_init(&s);
	sha256_update(&s, "smig-hb", 7);
	sha256_update(&s, &counter, sizeof(counter));
	sha256_final(&s, digest);
	if (tpm_extend(PCR, digest) < 0) {
		put_str("FAIL vtpm extend\n");
		t->failed = 1;
		return;
	}
	sha256_init(&s);
	sha256_update(&s, t->chain, 32);
	sha256_update(&s, digest, 32);
	sha256_final(&s, t->chain);
	t->extends++;
	if (tpm_read(PCR, pcr) < 0 || memcmp(pcr, t->chain, 32) != 0) {
		put_str("FAIL vtpm pcr16 differs from the guest's own chain\n");
		t->failed = 1;
		return;
	}
	if (t->extends % 10 == 0) {
		put_str("VTPM ok ");
		put_u64(t->extends);
		put_str("\n");
	}
}

/*
 * A stopped VM does not see its own clock move (the TSC stops with it),
 * but the CMOS clock follows the host's. Each change of the RTC's second
 * comes one host second after the last, which the guest measures as about
 * the same number of its own ms every time (its TSC calibration may be a
 * few per cent off, steadily): the rate is measured over every second
 * since the watch began, up to the one before, so that a change seen late
 * (the vCPU not running at that moment, on a busy host) moves it by that
 * lateness divided by the seconds watched, not by twice the lateness. A
 * stretch between changes that looks shorter than its seconds by MS or
 * more held a stop of the VM that long.
 */
struct pause_watch {
	uint8_t last_sec;
	int seen;          /* second changes observed */
	uint32_t secs;     /* host seconds from the first change to the last */
	uint64_t last_ms;
	uint64_t anchor_ms; /* the first change: where the rate is measured from */
};

static uint8_t rtc_seconds(void)
{
	uint8_t v;

	outb(0x70, 0x0A);
	while (inb(0x71) & 0x80) /* update in progress */
		outb(0x70, 0x0A);
	outb(0x70, 0x00);
	v = inb(0x71);
	outb(0x70, 0x0B);
	if (!(inb(0x71) & 0x04)) /* BCD */
		v = (uint8_t)((v >> 4) * 10 + (v & 0x0F));
	return v;
}

static void pause_check(struct pause_watch *pw, uint64_t now)
{
	uint8_t sec = rtc_seconds();
	uint32_t secs, guest_ms, expect;

	if (pw->seen > 0 && sec == pw->last_sec)
		return;
	if (pw->seen == 1) { /* the first change seen (the first look fell mid-second) */
		pw->anchor_ms = now;
	} else if (pw->seen >= 2) {
		secs = (uint32_t)((sec + 60 - pw->last_sec) % 60);
		/* two whole seconds watched before this stretch: a rate worth trusting */
		if (pw->secs >= 2) {
			uint32_t per_sec = (uint32_t)((pw->last_ms - pw->anchor_ms) / pw->secs);

			guest_ms = (uint32_t)(now - pw->last_ms);
			expect = per_sec * secs;
			if (expect > guest_ms && expect - guest_ms >= P.panic_pause_ms) {
				put_str("PANIC on purpose: the VM was stopped (host seconds ");
				put_u64(expect - guest_ms);
				put_str(" guest ms short)\n");
				outb(0x70, 0x80); /* NMI off */
				outb(0x505, 1);   /* pvpanic: guest panicked */
				for (;;)
					__asm__ volatile("cli; hlt");
			}
		}
		pw->secs += secs;
	}
	pw->last_sec = sec;
	pw->last_ms = now;
	pw->seen++;
}

/* ACPI fixed hardware: PM1 status, enable and control registers, the power button bit */
#define PM1_STS 0
#define PM1_EN 2
#define PM1_CNT 4
#define PWRBTN 0x0100u
#define SLP_EN 0x2000u
#define SLP_TYP_MASK 0x1C00u

static uint16_t pm_base; /* the PM1 block's I/O port, 0 without one */

static uint32_t pci_read32(uint32_t dev, uint32_t fn, uint32_t off)
{
	outl(0xCF8, 0x80000000u | (dev << 11) | (fn << 8) | (off & 0xFCu));
	return inl(0xCFC);
}

/* Finds the PM block the firmware set up (PIIX4 PM 00:01.3 or ICH9 LPC 00:1f.0, PMBASE at 0x40). */
static void acpi_init(void)
{
	uint32_t base = 0;

	if (P.acpi_off)
		return;
	if (pci_read32(1, 3, 0) == 0x71138086u)
		base = pci_read32(1, 3, 0x40);
	else if (pci_read32(31, 0, 0) == 0x29188086u)
		base = pci_read32(31, 0, 0x40);
	pm_base = (uint16_t)(base & 0xFFC0u);
	if (pm_base)
		outw((uint16_t)(pm_base + PM1_EN), (uint16_t)(inw((uint16_t)(pm_base + PM1_EN)) | PWRBTN));
}

/* The power button was pressed: off, as S5 (SLP_TYP 0 on QEMU's chipsets). */
static void acpi_poll(void)
{
	uint16_t cnt, sts;

	if (pm_base == 0)
		return;
	sts = inw((uint16_t)(pm_base + PM1_STS));
	if (sts == 0xFFFFu || !(sts & PWRBTN)) /* all ones: the block is not decoded */
		return;
	outw((uint16_t)(pm_base + PM1_STS), PWRBTN); /* write 1 to clear */
	put_str("POWEROFF acpi\n");
	cnt = inw((uint16_t)(pm_base + PM1_CNT));
	outw((uint16_t)(pm_base + PM1_CNT), (uint16_t)((cnt & ~SLP_TYP_MASK) | SLP_EN));
	for (;;)
		__asm__ volatile("cli; hlt");
}

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void dirty_some(uint64_t *done, uint64_t t0, uint64_t now)
{
	uint64_t target;
	uint32_t n = 0;

	if (P.dirty == 0 || npages == 0)
		return;
	target = P.dirty == UINT32_MAX ? *done + 256 : (uint64_t)P.dirty * (now - t0) / 1000;
	while (*done < target && n++ < 4096) {
		uint32_t page = rng() % npages;
		gen[page]++;
		page_write(page);
		(*done)++;
	}
}

void guest_main(uint32_t magic, const uint32_t *mbi);

void guest_main(uint32_t magic, const uint32_t *mbi)
{
	struct vtpm tpm = { 0 };
	struct pause_watch pw = { 0 };
	uint64_t counter = 0;
	uint64_t dirtied = 0;
	uint32_t sweep = 0;
	uint64_t t0;
	uint64_t next_hb;

	serial_init();
	clock_init();
	if (magic == 0x2BADB002u && (mbi[0] & 4))
		parse_cmdline((const char *)mbi[4]);
	if (P.mem_mib == 0 || P.mem_mib > MAX_WS_MIB ||
	    (magic == 0x2BADB002u && (mbi[0] & 1) &&
	     (uint64_t)WS_BASE + ((uint64_t)P.mem_mib << 20) > (1u << 20) + ((uint64_t)mbi[2] << 10))) {
		put_str("FAIL config: working set does not fit in guest RAM\n");
		return;
	}
	npages = P.mem_mib * 256u;
	rng_state ^= P.seed * 0x9E3779B9u;
	put_str("BOOT smig-guest mem=");
	put_u64(P.mem_mib);
	put_str(" dirty=");
	if (P.dirty == UINT32_MAX)
		put_str("max");
	else
		put_u64(P.dirty);
	put_str(" seed=");
	put_u64(P.seed);
	put_str("\n");
	vtpm_init(&tpm);
	acpi_init();
	for (uint32_t p = 0; p < npages; p++) {
		gen[p] = 1;
		page_write(p);
	}
	put_str("READY pages=");
	put_u64(npages);
	put_str("\n");
	t0 = now_ms();
	next_hb = t0;
	for (;;) {
		uint64_t now = now_ms();

		dirty_some(&dirtied, t0, now);
		if (P.panic_pause_ms)
			pause_check(&pw, now);
		for (uint32_t i = 0; i < VERIFY_CHUNK; i++) {
			page_verify(sweep);
			sweep = sweep + 1 == npages ? 0 : sweep + 1;
		}
		if (now >= next_hb) {
			counter++;
			if (P.corrupt_at && counter == P.corrupt_at)
				page_ptr(npages / 2)[7] ^= 0x10; /* behind the verifier's back */
			put_str("HB ");
			put_u64(counter);
			put_str(" ");
			put_u64(verified);
			put_str(" ");
			put_u64(errors);
			put_str("\n");
			vtpm_beat(&tpm, counter);
			acpi_poll();
			next_hb += P.hb_ms;
			if (next_hb < now)
				next_hb = now + P.hb_ms;
		}
	}
}
