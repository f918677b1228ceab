/*
 * efi.c - the UEFI side of the Linux test guest's init (memcheck.c): under
 * OVMF it reads, and sets, one non-volatile UEFI variable, so a test can
 * see that the variable store travelled with the VM and outlives a reboot.
 *
 * Kernel command line:
 *   memcheck.efivar=VALUE   print the variable's current value, then store VALUE
 *   memcheck.pcr=1          with a TPM: PCR 0 (sha256) at boot and every 5 s
 * Console lines:
 *   EFIVAR old=<value|none>   and, when it changed,   EFIVAR set=<value>
 *   PCR0 <64 hex digits>      what the firmware measured, as the vTPM holds it
 */
#define _GNU_SOURCE
#include "memcheck.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define EFIVARS "/sys/firmware/efi/efivars"
#define VAR EFIVARS "/SmigTest-5ee1cafe-0000-4000-8000-00000000051f"

void efi_check(const char *value)
{
	/* non-volatile, boot service and runtime access */
	uint8_t buf[128] = { 0x07, 0, 0, 0 };
	char old[96] = "none";
	size_t n = strlen(value);
	ssize_t r;
	int fd;

	if (value[0] == '\0')
		return;
	mkdir("/sys", 0555);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	load_module("/lib/modules/efivarfs.ko");
	if (mount("efivarfs", EFIVARS, "efivarfs", 0, NULL) != 0 && errno != EBUSY) {
		say("FAIL efi: cannot mount efivarfs: %s (not booted by UEFI?)\n", strerror(errno));
		return;
	}
	fd = open(VAR, O_RDONLY);
	if (fd >= 0) {
		r = read(fd, buf, sizeof(buf) - 1);
		if (r > 4)
			snprintf(old, sizeof(old), "%.*s", (int)(r - 4), (const char *)buf + 4);
		close(fd);
	}
	say("EFIVAR old=%s\n", old);
	if (strcmp(old, value) == 0 || n + 4 > sizeof(buf))
		return;
	/* efivarfs files are immutable until told otherwise; a new one is not */
	fd = open(VAR, O_WRONLY | O_CREAT, 0644);
	buf[0] = 0x07;
	memcpy(buf + 4, value, n);
	if (fd < 0 || write(fd, buf, n + 4) != (ssize_t)(n + 4))
		say("FAIL efi: cannot set the variable: %s\n", strerror(errno));
	else
		say("EFIVAR set=%s\n", value);
	if (fd >= 0)
		close(fd);
}

/* TPM2_PCR_Read of sha256 PCR 0 through /dev/tpm0; 0 and the digest, or -1. */
static int pcr0(uint8_t digest[32])
{
	static const uint8_t cmd[] = { 0x80, 0x01, 0, 0, 0, 20, 0, 0, 0x01, 0x7e, 0, 0, 0, 1,
				       0x00, 0x0b, 3, 0x01, 0, 0 };
	uint8_t rsp[128];
	ssize_t r;
	int fd = open("/dev/tpm0", O_RDWR);

	if (fd < 0)
		return -1;
	r = write(fd, cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd) ? read(fd, rsp, sizeof(rsp)) : -1;
	close(fd);
	/* header(10) counter(4) selection(10) count(4) size(2) digest(32); rc 0 */
	if (r < 62 || rsp[6] || rsp[7] || rsp[8] || rsp[9] || rsp[28] != 0 || rsp[29] != 32)
		return -1;
	memcpy(digest, rsp + 30, 32);
	return 0;
}

static void *pcr_loop(void *arg)
{
	(void)arg;
	for (;;) {
		uint8_t d[32];
		char hex[65];

		if (pcr0(d) == 0) {
			for (int i = 0; i < 32; i++)
				snprintf(hex + 2 * i, 3, "%02x", d[i]);
			say("PCR0 %s\n", hex);
		} else {
			say("FAIL tpm: cannot read PCR 0 through /dev/tpm0\n");
		}
		sleep(5);
	}
	return NULL;
}

void pcr_start(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, pcr_loop, NULL) == 0)
		pthread_detach(t);
}
