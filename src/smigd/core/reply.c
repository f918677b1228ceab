/*
 * reply.c - answers to whoever asked (smigd.h, "reply.c"): a reply or a
 * progress line for a control client goes out through the sink the
 * control part registered (its socket), an internal caller's through its
 * done callback; an allowed request's outcome is audited with its reply;
 * followers (--follow) get every new item. Any part may answer a request
 * this way without knowing the control part.
 */
#include "core/smigd.h"
#include "error.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reply {
	struct reply_sink sink;
};

int reply_init(struct smigd *d)
{
	d->reply = calloc(1, sizeof(*d->reply));
	return d->reply ? 0 : SMIG_ENOMEM;
}

void reply_free(struct smigd *d)
{
	free(d->reply);
	d->reply = NULL;
}

void reply_set_sink(struct smigd *d, const struct reply_sink *sink)
{
	if (d->reply)
		d->reply->sink = sink ? *sink : (struct reply_sink){ 0 };
}

bool ctl_ref_alive(struct smigd *d, const struct ctl_ref *ref)
{
	const struct reply *r = d->reply;

	return ref->client_id && r && r->sink.alive && r->sink.alive(r->sink.arg, ref->client_id);
}

/* To the control client that asked, through the sink the control part registered. */
static void to_client(struct smigd *d, uint64_t client, json_t *msg)
{
	const struct reply *r = d->reply;

	if (client && r && r->sink.send)
		r->sink.send(r->sink.arg, client, msg);
}

/* An allowed request's outcome goes to the audit log with its reply. */
static void ref_audit(struct smigd *d, struct ctl_ref *ref, const json_t *msg)
{
	const json_t *err = json_object_get(msg, "error");
	struct ctl_audit *a = &ref->audit;

	if (!a->on)
		return;
	a->on = false;
	audit_write(d, a->actor, a->action, a->target, "allow", a->rule, err ? "failed" : "ok",
		    err ? json_string_value(json_object_get(err, "message")) : NULL);
}

static void ref_send(struct smigd *d, struct ctl_ref *ref, json_t *msg)
{
	void (*done)(struct smigd *, void *, const json_t *) = ref->done;

	ref_audit(d, ref, msg);
	ref->done = NULL;
	if (done)
		done(d, ref->done_arg, msg);
	to_client(d, ref->client_id, msg);
	json_decref(msg);
	json_decref(ref->id);
	ref->id = NULL;
	ref->client_id = 0;
}

void ctl_progress(struct smigd *d, const struct ctl_ref *ref, json_t *progress)
{
	json_t *msg = json_pack("{s:O?,s:o}", "id", ref->id, "progress", progress);

	if (msg)
		to_client(d, ref->client_id, msg);
	json_decref(msg);
}

struct ctl_follower {
	struct ctl_follower *next;
	struct ctl_ref ref;
};

/* How often one control connection may follow the same thing at once. */
#define CTL_FOLLOWS_PER_CLIENT 4

void ctl_follow(struct smigd *d, struct ctl_followers *list, struct ctl_ref *ref,
		const json_t *items)
{
	struct ctl_follower *f;
	size_t same = 0;

	for (f = list->head; f; f = f->next)
		same += f->ref.client_id == ref->client_id;
	if (same >= CTL_FOLLOWS_PER_CLIENT) {
		ctl_reply_err(d, ref, "busy",
			      "this connection follows it %zu times already, the most; one is enough",
			      same);
		return;
	}
	f = calloc(1, sizeof(*f));
	for (size_t i = 0; i < json_array_size(items); i++)
		ctl_progress(d, ref, json_incref(json_array_get(items, i)));
	if (f == NULL) {
		ctl_reply_err(d, ref, "error", "out of memory");
		return;
	}
	f->ref = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	f->next = list->head;
	list->head = f;
}

void ctl_followers_send(struct smigd *d, struct ctl_followers *list, const json_t *item)
{
	for (struct ctl_follower **pp = &list->head; *pp;) {
		struct ctl_follower *f = *pp;

		if (!ctl_ref_alive(d, &f->ref)) {
			*pp = f->next;
			json_decref(f->ref.id);
			free(f);
			continue;
		}
		ctl_progress(d, &f->ref, json_incref((json_t *)item));
		pp = &f->next;
	}
}

void ctl_followers_end(struct smigd *d, struct ctl_followers *list)
{
	while (list->head) {
		struct ctl_follower *f = list->head;

		list->head = f->next;
		ctl_reply_ok(d, &f->ref, json_pack("{s:s}", "end", "smigd stopped"));
		free(f);
	}
}

void ctl_followers_reply(struct smigd *d, struct ctl_followers *list, const json_t *result,
			 const char *code, const char *message)
{
	while (list->head) {
		struct ctl_follower *f = list->head;

		list->head = f->next;
		if (!ctl_ref_alive(d, &f->ref))
			json_decref(f->ref.id);
		else if (code)
			ctl_reply_err(d, &f->ref, code, "%s", message);
		else
			ctl_reply_ok(d, &f->ref, json_incref((json_t *)result));
		free(f);
	}
}

void ctl_reply_ok(struct smigd *d, struct ctl_ref *ref, json_t *result)
{
	ref_send(d, ref, json_pack("{s:O?,s:b,s:o}", "id", ref->id, "ok", 1, "result", result));
}

void ctl_reply_err(struct smigd *d, struct ctl_ref *ref, const char *code, const char *fmt,
		   ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ref_send(d, ref, json_pack("{s:O?,s:b,s:{s:s,s:s}}", "id", ref->id, "ok", 0, "error",
				   "code", code, "message", msg));
}
