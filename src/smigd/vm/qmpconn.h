/*
 * qmpconn.h - smigd's QMP connection to one QEMU: negotiate,
 * send commands (optionally passing a file descriptor) and match replies
 * by id, deliver events. Runs on the daemon's event loop.
 */
#ifndef SMIGD_QMPCONN_H
#define SMIGD_QMPCONN_H

#include "common/loop.h"
#include "qmp.h"

#include <jansson.h>

struct qmpconn;

/* reply is NULL when the command failed to get an answer (closed, timeout). */
typedef void (*qmp_reply_fn)(void *arg, const struct smig_qmp_msg *reply);
typedef void (*qmp_event_fn)(void *arg, const struct smig_qmp_msg *event);
/* Called once when the connection is ready (ok) or failed (!ok). */
typedef void (*qmp_state_fn)(void *arg, bool ok, const char *why);

/* A QMP connection on fd, a connected socket (taken over, closed on failure too). */
struct qmpconn *qmpconn_new(struct loop *loop, int fd, qmp_state_fn on_state,
			    qmp_event_fn on_event, void *arg);
void qmpconn_free(struct qmpconn *q);
/*
 * Sends cmd with args (stolen, may be NULL); fd >= 0 is passed along with
 * SCM_RIGHTS (for getfd). cb may be NULL. 0 or a negative code.
 */
int qmpconn_send(struct qmpconn *q, const char *cmd, json_t *args, int fd, qmp_reply_fn cb,
		 void *cb_arg);

#endif
