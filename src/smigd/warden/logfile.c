/*
 * logfile.c - smigd's log in a file of its own (log.file), rotated by size.
 *
 * Without log.file the log goes to stderr (the journal, which rotates it).
 * With it, the warden opens the file (root's, mode 0640) as its own stderr
 * before it starts the worker, which inherits it. Every few seconds the
 * warden looks at its size; past log.max_kib the names shift up by one
 * (FILE.1 .. FILE.KEEP; the oldest past log.keep goes), a new FILE is
 * opened as the warden's stderr, and the worker gets it too (EV_LOG), so
 * both write the new file from then on and nothing is written to a file
 * that is gone.
 */
#include "warden/wd_int.h"
#include "error.h"
#include "file.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_CHECK_MS 2000

static int log_open(const struct warden *w)
{
	int fd = open(w->cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		      0640);

	if (fd >= 0 && (fchown(fd, 0, 0) < 0 || fchmod(fd, 0640) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* FILE opened again as the warden's stderr and sent to the worker as its own. */
static void log_reopen(struct warden *w)
{
	struct smig_buf b;
	int fd = log_open(w);

	if (fd < 0) {
		smig_err("event=log_rotate_failed path=%s reason=\"%s\" action=keep_writing_%s.1",
			 w->cfg.log_file, strerror(errno), w->cfg.log_file);
		return;
	}
	if (dup2(fd, STDERR_FILENO) < 0)
		smig_err("event=log_rotate_failed path=%s reason=\"%s\"", w->cfg.log_file,
			 strerror(errno));
	smig_buf_init(&b, 64);
	if (smig_pm_build(&b, SMIG_PM_EV_LOG, 0) == 0)
		wd_send(w, &b, &fd, 1);
	smig_buf_clear(&b);
	close(fd);
}

static void log_rotate(struct warden *w)
{
	char err[PATH_MAX + 64];

	if (smig_file_shift(w->cfg.log_file, w->cfg.log_keep, err, sizeof(err)) < 0)
		smig_warn("event=log_rotate_failed reason=\"%s\"", err);
	log_reopen(w);
	smig_info("event=log_rotated path=%s continues=%s.1", w->cfg.log_file, w->cfg.log_file);
}

/*
 * Past the size, the files shift only when what we write is FILE itself;
 * when it is not (FILE was moved away, or could not be opened after the
 * last shift), FILE is opened again instead, so a failure never shifts
 * the live file out of the set.
 */
static void log_tick(void *arg)
{
	struct warden *w = arg;
	struct stat cur, named;

	w->log_t = NULL;
	if (fstat(STDERR_FILENO, &cur) == 0 && cur.st_size >= (off_t)w->cfg.log_max_kib * 1024) {
		if (lstat(w->cfg.log_file, &named) == 0 && named.st_ino == cur.st_ino &&
		    named.st_dev == cur.st_dev)
			log_rotate(w);
		else
			log_reopen(w);
	}
	(void)loop_timer_add(w->loop, LOG_CHECK_MS, log_tick, w, &w->log_t);
}

int wd_log_open(struct warden *w)
{
	int fd;

	if (w->cfg.log_file[0] == '\0')
		return 0;
	fd = log_open(w);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
		smig_err("event=log_open_failed path=%s reason=\"%s\"", w->cfg.log_file,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return SMIG_EIO;
	}
	smig_log_reopened(); /* a file, not the journal: no priority prefixes */
	close(fd);
	smig_info("event=log_open path=%s max_kib=%d keep=%d", w->cfg.log_file,
		  w->cfg.log_max_kib, w->cfg.log_keep);
	return loop_timer_add(w->loop, LOG_CHECK_MS, log_tick, w, &w->log_t);
}

void wd_log_close(struct warden *w)
{
	if (w->loop)
		loop_timer_cancel(w->loop, w->log_t);
	w->log_t = NULL;
}
