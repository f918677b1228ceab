/*
 * io.h - port and memory-mapped I/O, the serial console, the clock and
 * text output for the freestanding test guest.
 */
#ifndef GUEST_IO_H
#define GUEST_IO_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint8_t mmio_read8(uint32_t addr)
{
	return *(volatile uint8_t *)addr;
}

static inline uint32_t mmio_read32(uint32_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write8(uint32_t addr, uint8_t v)
{
	*(volatile uint8_t *)addr = v;
}

static inline void mmio_write32(uint32_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

void serial_init(void);
void put_str(const char *s);
void put_u64(uint64_t v);
void put_hex32(uint32_t v);

/* Calibrates the TSC against the PIT; afterwards now_ms() is usable. */
void clock_init(void);
uint64_t now_ms(void);

void *memset(void *d, int c, uint32_t n);
void *memcpy(void *d, const void *s, uint32_t n);
int memcmp(const void *a, const void *b, uint32_t n);

#endif
