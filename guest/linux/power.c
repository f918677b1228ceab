/*
 * power.c - the Linux test guest's answer to the ACPI power button, as an
 * operating system's: the kernel's button driver reports it as KEY_POWER
 * on an input device named "Power Button"; a thread reads it there
 * (evdev) and powers the guest off, after "POWEROFF acpi" on the console.
 */
#define _GNU_SOURCE
#include "memcheck.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/input.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <unistd.h>

/* The event device of the power button, once evdev has made it; -1 if there is none. */
static int find_button(void)
{
	for (int tries = 0; tries < 50; tries++) {
		DIR *d = opendir("/dev/input");
		struct dirent *e;

		while (d && (e = readdir(d)) != NULL) {
			char path[300], name[64] = "";
			int fd;

			if (strncmp(e->d_name, "event", 5) != 0)
				continue;
			snprintf(path, sizeof(path), "/dev/input/%s", e->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) >= 0 &&
			    strcmp(name, "Power Button") == 0) {
				closedir(d);
				return fd;
			}
			close(fd);
		}
		if (d)
			closedir(d);
		usleep(100000); /* udev-less: the device node comes when the driver binds */
	}
	return -1;
}

static void *watch(void *arg)
{
	struct input_event ev;
	int fd = find_button();

	(void)arg;
	if (fd < 0) {
		say("memcheck: no ACPI power button\n");
		return NULL;
	}
	while (read(fd, &ev, sizeof(ev)) == (ssize_t)sizeof(ev)) {
		if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) {
			say("POWEROFF acpi\n");
			sync();
			reboot(RB_POWER_OFF);
		}
	}
	return NULL;
}

void power_start(void)
{
	pthread_t t;

	load_module("/lib/modules/button.ko");
	load_module("/lib/modules/evdev.ko");
	if (pthread_create(&t, NULL, watch, NULL) == 0)
		pthread_detach(t);
}
