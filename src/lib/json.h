/*
 * json.h - strict JSON documents with positions, over jansson.
 *
 * jansson parses and reports syntax errors with line and column, but keeps
 * no positions for values. smig_json_load_*() parses with jansson (duplicate
 * keys refused) and then walks the same text once to record where every
 * member and element starts, so that schema and semantic errors can name
 * file:line:column too. smig_json_check() enforces a per-object schema:
 * unknown key, wrong type, missing field and out-of-range integer are errors.
 */
#ifndef SMIG_JSON_H
#define SMIG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_JSON_MAX_FILE (1024L * 1024L)

struct smig_json_pos;

struct smig_json_doc {
	json_t *root;
	char name[256]; /* file name used in messages */
	struct smig_json_pos *pos;
	size_t npos;
	size_t cap;
};

enum smig_jtype {
	SMIG_J_STRING,
	SMIG_J_INT,
	SMIG_J_BOOL,
	SMIG_J_OBJECT,
	SMIG_J_ARRAY,
	SMIG_J_NUMBER, /* integer or real */
};

struct smig_jfield {
	const char *key;
	enum smig_jtype type;
	bool required;
	long long min; /* integer bounds, used when min < max */
	long long max;
};

/* A JSON string of the lowercase hex of n bytes; NULL when out of memory. */
json_t *smig_json_hex(const uint8_t *p, size_t n);

/* Loads a file (at most SMIG_JSON_MAX_FILE bytes); the root must be an object. */
int smig_json_load_file(struct smig_json_doc *doc, const char *path, char *err, size_t errlen);
/* Same for text in memory; name stands for the file in messages. */
int smig_json_load_text(struct smig_json_doc *doc, const char *name, const char *text,
			size_t len, char *err, size_t errlen);
/* The file name when text is NULL, else text (len bytes) named name. */
int smig_json_load(struct smig_json_doc *doc, const char *name, const char *text, size_t len,
		   char *err, size_t errlen);
void smig_json_doc_clear(struct smig_json_doc *doc);

/*
 * Checks obj against fields[0..n): every key known, of the right type and
 * in range, every required key present. what names obj in messages.
 */
int smig_json_check(const struct smig_json_doc *doc, const json_t *obj, const char *what,
		    const struct smig_jfield *fields, size_t n, char *err, size_t errlen);

/*
 * Formats "file:line:col: message" into err for the member key of obj (or
 * obj itself when key is NULL) and returns SMIG_ECONFIG.
 */
__attribute__((format(printf, 6, 7)))
int smig_json_fail(const struct smig_json_doc *doc, const json_t *obj, const char *key,
		   char *err, size_t errlen, const char *fmt, ...);

/* Same for element index of array arr. */
__attribute__((format(printf, 6, 7)))
int smig_json_fail_at(const struct smig_json_doc *doc, const json_t *arr, size_t index,
		      char *err, size_t errlen, const char *fmt, ...);

/* Line and column of a container value, or of a member's value; 0 if unknown. */
void smig_json_where(const struct smig_json_doc *doc, const json_t *obj, const char *key,
		     int *line, int *col);

/*
 * A path member key of obj into out: as written when absolute, else
 * relative to the directory of base (the file the value came from).
 */
int smig_json_path(const struct smig_json_doc *doc, const json_t *obj, const char *key,
		   const char *base, char *out, size_t outlen, char *err, size_t errlen);

#endif
