/*
 * memcheck.h - what the parts of the Linux test guest's init share.
 */
#ifndef MEMCHECK_H
#define MEMCHECK_H

/* A line on the console. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Loads a kernel module file (errors go to the console). */
void load_module(const char *path);
/*
 * Brings up the network (cidr "A.B.C.D/NN"), the TCP echo service and,
 * with spoof ("A.B.C.D:PORT"), the spoofing datagrams.
 */
void net_start(const char *cidr, unsigned long echo_port, const char *spoof);

/* Under UEFI: prints the test variable, then stores value in it (efi.c). */
void efi_check(const char *value);

/* Powers the guest off when the ACPI power button is pressed (power.c). */
void power_start(void);

/* With a TPM: prints PCR 0 now and every 5 s (efi.c). */
void pcr_start(void);

#endif
