/*
 * json.c - strict JSON loading with value positions (json.h).
 *
 * The position walk relies on two facts: jansson has already accepted the
 * text (so it is valid JSON), and jansson iterates object members in the
 * order they were read. With duplicates refused, the n-th member in the
 * text is the n-th member of the iteration, so keys never need decoding.
 *
 * The walk recurses once per nesting level; jansson refuses documents
 * nested deeper than 2048 levels, which bounds the recursion.
 */
#include "json.h"
#include "error.h"
#include "file.h"
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct smig_json_pos {
	const json_t *value;  /* containers only: the object or array itself */
	const json_t *parent; /* the container holding the item, or NULL */
	const char *key;      /* member key (jansson's storage) or NULL */
	size_t index;         /* element index when key is NULL */
	int key_line, key_col;
	int line, col; /* where the value starts */
};

struct scan {
	struct smig_json_doc *doc;
	const char *s;
	size_t n;
	size_t i;
	int line;
	int col;
};

static int doc_add(struct smig_json_doc *doc, const struct smig_json_pos *p)
{
	if (doc->npos == doc->cap) {
		size_t ncap = doc->cap ? doc->cap * 2 : 64;
		struct smig_json_pos *np = realloc(doc->pos, ncap * sizeof(*np));
		SMIG_ENSURE(np != NULL, SMIG_ENOMEM);
		doc->pos = np;
		doc->cap = ncap;
	}
	doc->pos[doc->npos++] = *p;
	return 0;
}

static void scan_advance(struct scan *sc)
{
	if (sc->i >= sc->n)
		return;
	if (sc->s[sc->i] == '\n') {
		sc->line++;
		sc->col = 1;
	} else if (((unsigned char)sc->s[sc->i] & 0xC0) != 0x80) {
		sc->col++; /* count characters, not UTF-8 continuation bytes */
	}
	sc->i++;
}

static void scan_ws(struct scan *sc)
{
	while (sc->i < sc->n && strchr(" \t\r\n", sc->s[sc->i]) && sc->s[sc->i] != '\0')
		scan_advance(sc);
}

static int scan_expect(struct scan *sc, char c)
{
	scan_ws(sc);
	SMIG_ENSURE(sc->i < sc->n && sc->s[sc->i] == c, SMIG_EPROTO);
	scan_advance(sc);
	return 0;
}

static int scan_string(struct scan *sc)
{
	SMIG_ENSURE(sc->i < sc->n && sc->s[sc->i] == '"', SMIG_EPROTO);
	scan_advance(sc);
	while (sc->i < sc->n && sc->s[sc->i] != '"') {
		if (sc->s[sc->i] == '\\')
			scan_advance(sc);
		scan_advance(sc);
	}
	SMIG_ENSURE(sc->i < sc->n, SMIG_EPROTO);
	scan_advance(sc);
	return 0;
}

static int scan_value(struct scan *sc, const json_t *v, struct smig_json_pos *at);

static int scan_object(struct scan *sc, const json_t *obj) // NOLINT(misc-no-recursion)
{
	void *it = json_object_iter((json_t *)obj);

	SMIG_GUARD(scan_expect(sc, '{'));
	scan_ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == '}') {
		scan_advance(sc);
		return 0;
	}
	for (;;) {
		struct smig_json_pos at = { .parent = obj };

		SMIG_ENSURE(it != NULL, SMIG_EPROTO);
		scan_ws(sc);
		at.key = json_object_iter_key(it);
		at.key_line = sc->line;
		at.key_col = sc->col;
		SMIG_GUARD(scan_string(sc));
		SMIG_GUARD(scan_expect(sc, ':'));
		SMIG_GUARD(scan_value(sc, json_object_iter_value(it), &at));
		it = json_object_iter_next((json_t *)obj, it);
		scan_ws(sc);
		SMIG_ENSURE(sc->i < sc->n, SMIG_EPROTO);
		if (sc->s[sc->i] == '}') {
			scan_advance(sc);
			return 0;
		}
		SMIG_GUARD(scan_expect(sc, ','));
	}
}

static int scan_array(struct scan *sc, const json_t *arr) // NOLINT(misc-no-recursion)
{
	size_t idx = 0;

	SMIG_GUARD(scan_expect(sc, '['));
	scan_ws(sc);
	if (sc->i < sc->n && sc->s[sc->i] == ']') {
		scan_advance(sc);
		return 0;
	}
	for (;;) {
		struct smig_json_pos at = { .parent = arr, .index = idx };

		SMIG_ENSURE(idx < json_array_size(arr), SMIG_EPROTO);
		SMIG_GUARD(scan_value(sc, json_array_get(arr, idx), &at));
		idx++;
		scan_ws(sc);
		SMIG_ENSURE(sc->i < sc->n, SMIG_EPROTO);
		if (sc->s[sc->i] == ']') {
			scan_advance(sc);
			return 0;
		}
		SMIG_GUARD(scan_expect(sc, ','));
	}
}

static int scan_value(struct scan *sc, const json_t *v, // NOLINT(misc-no-recursion)
		      struct smig_json_pos *at)
{
	scan_ws(sc);
	SMIG_ENSURE(sc->i < sc->n, SMIG_EPROTO);
	at->line = sc->line;
	at->col = sc->col;
	if (json_is_object(v) || json_is_array(v))
		at->value = v;
	SMIG_GUARD(doc_add(sc->doc, at));
	if (json_is_object(v))
		return scan_object(sc, v);
	if (json_is_array(v))
		return scan_array(sc, v);
	if (json_is_string(v))
		return scan_string(sc);
	/* numbers, true, false, null: up to the next delimiter */
	while (sc->i < sc->n && !strchr(",]} \t\r\n", sc->s[sc->i]))
		scan_advance(sc);
	return 0;
}

void smig_json_doc_clear(struct smig_json_doc *doc)
{
	json_decref(doc->root);
	free(doc->pos);
	memset(doc, 0, sizeof(*doc));
}

int smig_json_load_text(struct smig_json_doc *doc, const char *name, const char *text,
			size_t len, char *err, size_t errlen)
{
	struct smig_json_pos top = { 0 };
	struct scan sc = { .doc = doc, .s = text, .n = len, .line = 1, .col = 1 };
	json_error_t jerr;

	memset(doc, 0, sizeof(*doc));
	snprintf(doc->name, sizeof(doc->name), "%s", name);
	doc->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc->root == NULL) {
		/* jansson reports column 0 at the start of a line (e.g. at EOF) */
		snprintf(err, errlen, "%s:%d:%d: %s", doc->name, jerr.line,
			 jerr.column < 1 ? 1 : jerr.column, jerr.text);
		return SMIG_ECONFIG;
	}
	if (scan_value(&sc, doc->root, &top) < 0) {
		snprintf(err, errlen, "%s: internal error locating values", doc->name);
		smig_json_doc_clear(doc);
		return SMIG_ECONFIG;
	}
	if (!json_is_object(doc->root)) {
		snprintf(err, errlen, "%s:%d:%d: the top level must be an object", doc->name,
			 top.line, top.col);
		smig_json_doc_clear(doc);
		return SMIG_ECONFIG;
	}
	return 0;
}

int smig_json_load(struct smig_json_doc *doc, const char *name, const char *text, size_t len,
		   char *err, size_t errlen)
{
	if (text == NULL)
		return smig_json_load_file(doc, name, err, errlen);
	return smig_json_load_text(doc, name, text, len, err, errlen);
}

int smig_json_load_file(struct smig_json_doc *doc, const char *path, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc;

	memset(doc, 0, sizeof(*doc));
	rc = smig_file_read(path, (size_t)SMIG_JSON_MAX_FILE, &text, &len, err, errlen);
	if (rc < 0)
		return rc == SMIG_ETOOBIG ? SMIG_ECONFIG : rc;
	rc = smig_json_load_text(doc, path, text, len, err, errlen);
	free(text);
	return rc;
}

static const struct smig_json_pos *doc_find(const struct smig_json_doc *doc,
					    const json_t *parent, const char *key,
					    size_t index, bool by_value)
{
	for (size_t i = 0; i < doc->npos; i++) {
		const struct smig_json_pos *p = &doc->pos[i];
		if (by_value) {
			if (p->value == parent)
				return p;
		} else if (p->parent == parent) {
			if (key ? (p->key && strcmp(p->key, key) == 0) : (!p->key && p->index == index))
				return p;
		}
	}
	return NULL;
}

void smig_json_where(const struct smig_json_doc *doc, const json_t *obj, const char *key,
		     int *line, int *col)
{
	const struct smig_json_pos *p = key ? doc_find(doc, obj, key, 0, false)
					    : doc_find(doc, obj, NULL, 0, true);

	*line = p ? p->line : 0;
	*col = p ? p->col : 0;
}

__attribute__((format(printf, 6, 0)))
static int json_vfail(const struct smig_json_doc *doc, int line, int col, char *err,
		      size_t errlen, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(err, errlen, "%s:%d:%d: %s", doc->name, line, col, msg);
	return SMIG_ECONFIG;
}

int smig_json_fail(const struct smig_json_doc *doc, const json_t *obj, const char *key,
		   char *err, size_t errlen, const char *fmt, ...)
{
	int line;
	int col;
	int rc;
	va_list ap;

	smig_json_where(doc, obj, key, &line, &col);
	va_start(ap, fmt);
	rc = json_vfail(doc, line, col, err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

int smig_json_fail_at(const struct smig_json_doc *doc, const json_t *arr, size_t index,
		      char *err, size_t errlen, const char *fmt, ...)
{
	const struct smig_json_pos *p = doc_find(doc, arr, NULL, index, false);
	int rc;
	va_list ap;

	va_start(ap, fmt);
	rc = json_vfail(doc, p ? p->line : 0, p ? p->col : 0, err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static const char *jtype_name(enum smig_jtype t)
{
	static const char *const names[] = { "a string", "an integer", "a boolean",
					     "an object", "an array", "a number" };
	return names[t];
}

static bool jtype_is(enum smig_jtype t, const json_t *v)
{
	switch (t) {
	case SMIG_J_STRING: return json_is_string(v);
	case SMIG_J_INT: return json_is_integer(v);
	case SMIG_J_BOOL: return json_is_boolean(v);
	case SMIG_J_OBJECT: return json_is_object(v);
	case SMIG_J_ARRAY: return json_is_array(v);
	case SMIG_J_NUMBER: return json_is_number(v);
	}
	return false;
}

static int fail_unknown(const struct smig_json_doc *doc, const struct smig_json_pos *p,
			char *err, size_t errlen, const char *what, const char *key,
			const struct smig_jfield *fields, size_t n)
{
	char known[256] = "";
	size_t used = 0;

	for (size_t i = 0; i < n && used < sizeof(known); i++) {
		int w = snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "",
				 fields[i].key);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	snprintf(err, errlen, "%s:%d:%d: unknown key \"%s\" in %s (known: %s)", doc->name,
		 p ? p->key_line : 0, p ? p->key_col : 0, key, what, known);
	return SMIG_ECONFIG;
}

int smig_json_check(const struct smig_json_doc *doc, const json_t *obj, const char *what,
		    const struct smig_jfield *fields, size_t n, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		const struct smig_jfield *f = NULL;
		const struct smig_json_pos *p;

		for (size_t i = 0; i < n && !f; i++)
			if (strcmp(fields[i].key, key) == 0)
				f = &fields[i];
		if (f == NULL) {
			p = doc_find(doc, obj, key, 0, false);
			return fail_unknown(doc, p, err, errlen, what, key, fields, n);
		}
		if (!jtype_is(f->type, v))
			return smig_json_fail(doc, obj, key, err, errlen,
					      "%s.%s must be %s", what, key, jtype_name(f->type));
		if (f->type == SMIG_J_INT && f->min < f->max &&
		    (json_integer_value(v) < f->min || json_integer_value(v) > f->max))
			return smig_json_fail(doc, obj, key, err, errlen,
					      "%s.%s must be between %lld and %lld", what, key,
					      f->min, f->max);
	}
	for (size_t i = 0; i < n; i++)
		if (fields[i].required && json_object_get(obj, fields[i].key) == NULL)
			return smig_json_fail(doc, obj, NULL, err, errlen,
					      "%s: missing required key \"%s\"", what,
					      fields[i].key);
	return 0;
}

int smig_json_path(const struct smig_json_doc *doc, const json_t *obj, const char *key,
		       const char *base, char *out, size_t outlen, char *err, size_t errlen)
{
	const char *v = json_string_value(json_object_get(obj, key));
	const char *slash = strrchr(base, '/');
	int w;

	if (v[0] == '\0')
		return smig_json_fail(doc, obj, key, err, errlen, "%s must not be empty", key);
	if (v[0] == '/' || slash == NULL)
		w = snprintf(out, outlen, "%s", v);
	else
		w = snprintf(out, outlen, "%.*s/%s", (int)(slash - base), base, v);
	if (w < 0 || (size_t)w >= outlen)
		return smig_json_fail(doc, obj, key, err, errlen, "%s is too long", key);
	return 0;
}

json_t *smig_json_hex(const uint8_t *p, size_t n)
{
	char *hex = malloc(2 * n + 1);
	json_t *s;

	if (hex == NULL)
		return NULL;
	smig_hex(p, n, hex);
	s = json_string(hex);
	free(hex);
	return s;
}
