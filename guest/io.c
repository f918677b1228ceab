/*
 * io.c - serial console (COM1, polled), TSC clock calibrated with PIT
 * channel 2, and the few libc routines the compiler may call.
 */
#include "io.h"

#define COM1 0x3F8

void serial_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8N1 */
	outb(COM1 + 2, 0xC7); /* FIFO on */
	outb(COM1 + 4, 0x03);
}

static void put_char(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (uint8_t)c);
}

void put_str(const char *s)
{
	/* plain \n line ends: the host side reads lines, not a terminal */
	while (*s)
		put_char(*s++);
}

void put_u64(uint64_t v)
{
	char buf[21];
	int i = 20;

	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v && i > 0);
	put_str(&buf[i]);
}

void put_hex32(uint32_t v)
{
	static const char hex[] = "0123456789abcdef";
	char buf[9];

	for (int i = 0; i < 8; i++)
		buf[i] = hex[(v >> (28 - 4 * i)) & 15];
	buf[8] = '\0';
	put_str(buf);
}

static uint64_t tsc_per_ms = 1000000;
static uint64_t tsc_start;

void clock_init(void)
{
	/* PIT channel 2, mode 0, count 11932 (10 ms at 1.193182 MHz), gate on */
	uint16_t count = 11932;
	uint64_t t0, t1;

	outb(0x61, (uint8_t)((inb(0x61) & 0xFD) | 0x01));
	outb(0x43, 0xB0);
	outb(0x42, (uint8_t)(count & 0xFF));
	outb(0x42, (uint8_t)(count >> 8));
	/* restart the count by toggling the gate */
	outb(0x61, (uint8_t)(inb(0x61) & 0xFE));
	outb(0x61, (uint8_t)(inb(0x61) | 0x01));
	t0 = rdtsc();
	while (!(inb(0x61) & 0x20))
		;
	t1 = rdtsc();
	if (t1 > t0 + 10)
		tsc_per_ms = (t1 - t0) / 10;
	tsc_start = rdtsc();
}

uint64_t now_ms(void)
{
	return (rdtsc() - tsc_start) / tsc_per_ms;
}

void *memset(void *d, int c, uint32_t n)
{
	uint8_t *p = d;

	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, uint32_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, uint32_t n)
{
	const uint8_t *p = a;
	const uint8_t *q = b;

	for (uint32_t i = 0; i < n; i++)
		if (p[i] != q[i])
			return p[i] < q[i] ? -1 : 1;
	return 0;
}
