/*
 * allowlist.c - which files a host may have measured (see ima.h): a
 * strict JSON parser, and the judgement of an IMA list against it.
 *
 * A busy host's list has some 10^5 entries and an allowlist some 10^4
 * files, so the allowlist becomes one array of (path, digest) pairs
 * sorted by path and searched by bisection, its paths in one block.
 */
#include "error.h"
#include "file.h"
#include "ima.h"
#include "json.h"
#include "log.h"
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is wrong with s as a path of the allowlist (a prefix if prefix), or NULL. */
static const char *path_problem(const char *s, bool prefix)
{
	if (s[0] != '/')
		return "is not an absolute path";
	if (strlen(s) >= SMIG_IMA_PATH_MAX)
		return "is longer than a path may be";
	if (strchr(s, ' ') != NULL)
		return "holds a space, which IMA writes as '_' and never matches";
	if (prefix && s[1] == '\0')
		return "would exclude every file";
	return NULL;
}

/* The digests of one file: 1 to SMIG_ALLOW_DIGESTS_MAX of them, each once. */
static int check_digests(const struct smig_json_doc *doc, const json_t *files, const char *path,
			 char *err, size_t errlen)
{
	const json_t *arr = json_object_get(files, path);
	uint8_t d[SMIG_ALLOW_DIGESTS_MAX][32];

	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > SMIG_ALLOW_DIGESTS_MAX)
		return smig_json_fail(doc, files, path, err, errlen,
				      "files: %.200s: an array of 1 to %d SHA-256 digests", path,
				      SMIG_ALLOW_DIGESTS_MAX);
	for (size_t i = 0; i < json_array_size(arr); i++) {
		if (smig_unhex(json_string_value(json_array_get(arr, i)), d[i], 32) < 0)
			return smig_json_fail_at(doc, arr, i, err, errlen,
						 "files: %.200s: a SHA-256 digest is 64 hex digits",
						 path);
		for (size_t k = 0; k < i; k++)
			if (memcmp(d[k], d[i], 32) == 0)
				return smig_json_fail_at(doc, arr, i, err, errlen,
							 "files: %.200s: a digest listed twice",
							 path);
	}
	return 0;
}

/* Checks files; counts its digests into *n and its paths' bytes into *bytes. */
static int check_files(const struct smig_json_doc *doc, const json_t *files, size_t *n,
		       size_t *bytes, char *err, size_t errlen)
{
	const char *path;
	json_t *arr;

	json_object_foreach((json_t *)files, path, arr) {
		const char *why = path_problem(path, false);

		if (why)
			return smig_json_fail(doc, files, path, err, errlen, "files: \"%.200s\" %s",
					      path, why);
		SMIG_GUARD(check_digests(doc, files, path, err, errlen));
		*n += json_array_size(arr);
		*bytes += strlen(path) + 1;
	}
	return 0;
}

/* Checks exclude (NULL when absent); adds its strings' bytes to *bytes. */
static int check_exclude(const struct smig_json_doc *doc, const json_t *exclude, size_t *bytes,
			 char *err, size_t errlen)
{
	if (json_array_size(exclude) > SMIG_ALLOW_EXCLUDE_MAX)
		return smig_json_fail(doc, doc->root, "exclude", err, errlen,
				      "exclude: more than %d prefixes", SMIG_ALLOW_EXCLUDE_MAX);
	for (size_t i = 0; i < json_array_size(exclude); i++) {
		const char *s = json_string_value(json_array_get(exclude, i));
		const char *why = s ? path_problem(s, true) : "is not a string";

		if (why)
			return smig_json_fail_at(doc, exclude, i, err, errlen,
						 "exclude: \"%.200s\" %s", s ? s : "", why);
		*bytes += strlen(s) + 1;
	}
	return 0;
}

static int by_path(const void *a, const void *b)
{
	const struct smig_allowed *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	return c ? c : memcmp(x->sha256, y->sha256, sizeof(x->sha256));
}

/* Copies s into the storage at *at and returns where it went. */
static const char *keep(char **at, const char *s)
{
	char *p = *at;
	size_t n = strlen(s) + 1;

	memcpy(p, s, n);
	*at += n;
	return p;
}

/* Fills al from the checked files and exclude: n digests, bytes of strings. */
static int fill(const json_t *files, const json_t *exclude, size_t n, size_t bytes,
		struct smig_allowlist *al)
{
	const char *path;
	json_t *arr;
	char *at;

	al->paths = malloc(bytes + 1);
	al->v = calloc(n + 1, sizeof(*al->v));
	al->exclude = calloc(json_array_size(exclude) + 1, sizeof(*al->exclude));
	SMIG_ENSURE(al->paths && al->v && al->exclude, SMIG_ENOMEM);
	at = al->paths;
	json_object_foreach((json_t *)files, path, arr) {
		const char *kept = keep(&at, path);

		for (size_t i = 0; i < json_array_size(arr); i++, al->n++) {
			al->v[al->n].path = kept;
			/* checked already: cannot fail */
			(void)smig_unhex(json_string_value(json_array_get(arr, i)),
					 al->v[al->n].sha256, 32);
		}
	}
	for (size_t i = 0; i < json_array_size(exclude); i++)
		al->exclude[al->nexclude++] = keep(&at, json_string_value(json_array_get(exclude, i)));
	qsort(al->v, al->n, sizeof(*al->v), by_path);
	return 0;
}

static int allow_top(const struct smig_json_doc *doc, const json_t *root,
		     struct smig_allowlist *al, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "files", SMIG_J_OBJECT, true, 0, 0 },
		{ "exclude", SMIG_J_ARRAY, false, 0, 0 },
	};
	const json_t *files, *exclude;
	size_t n = 0, bytes = 0;

	SMIG_GUARD(smig_json_check(doc, root, "allowlist", fields, ARRAY_LEN(fields), err,
				   errlen));
	files = json_object_get(root, "files");
	exclude = json_object_get(root, "exclude");
	SMIG_GUARD(check_files(doc, files, &n, &bytes, err, errlen));
	SMIG_GUARD(check_exclude(doc, exclude, &bytes, err, errlen));
	if (fill(files, exclude, n, bytes, al) < 0) {
		snprintf(err, errlen, "%s: out of memory", doc->name);
		return SMIG_ENOMEM;
	}
	return 0;
}

int smig_allowlist_parse(const char *name, const char *text, size_t len,
			 struct smig_allowlist *al, char *err, size_t errlen)
{
	struct smig_json_doc doc;
	char *file = NULL;
	int rc;

	memset(al, 0, sizeof(*al));
	if (text == NULL) {
		rc = smig_file_read(name, SMIG_ALLOWLIST_MAX, &file, &len, err, errlen);
		if (rc < 0)
			return rc == SMIG_ETOOBIG ? SMIG_ECONFIG : rc;
		text = file;
	} else if (len > SMIG_ALLOWLIST_MAX) {
		snprintf(err, errlen, "%s: %zu bytes, more than %zu", name, len,
			 SMIG_ALLOWLIST_MAX);
		return SMIG_ECONFIG;
	}
	rc = smig_json_load_text(&doc, name, text, len, err, errlen);
	if (rc == 0) {
		rc = allow_top(&doc, doc.root, al, err, errlen);
		smig_json_doc_clear(&doc);
	}
	free(file);
	if (rc < 0)
		smig_allowlist_free(al);
	return rc;
}

int smig_allowlist_from_json(const struct smig_json_doc *doc, const json_t *o,
			     struct smig_allowlist *al, char *err, size_t errlen)
{
	int rc;

	memset(al, 0, sizeof(*al));
	rc = allow_top(doc, o, al, err, errlen);
	if (rc < 0)
		smig_allowlist_free(al);
	return rc;
}

json_t *smig_allowlist_json(const struct smig_allowlist *al)
{
	json_t *files = json_object(), *ex = json_array();
	char hex[65];

	for (size_t i = 0; i < al->n; i++) {
		json_t *arr = json_object_get(files, al->v[i].path);

		if (arr == NULL) {
			arr = json_array();
			json_object_set_new(files, al->v[i].path, arr);
		}
		smig_hex(al->v[i].sha256, 32, hex);
		json_array_append_new(arr, json_string(hex));
	}
	for (size_t i = 0; i < al->nexclude; i++)
		json_array_append_new(ex, json_string(al->exclude[i]));
	return json_pack("{s:o,s:o}", "files", files, "exclude", ex);
}

void smig_allowlist_free(struct smig_allowlist *al)
{
	free(al->v);
	free(al->exclude);
	free(al->paths);
	memset(al, 0, sizeof(*al));
}

/* The first pair whose path is not below path. */
static size_t lower_bound(const struct smig_allowlist *al, const char *path)
{
	size_t lo = 0, hi = al->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(al->v[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool excluded(const struct smig_allowlist *al, const char *path)
{
	for (size_t i = 0; i < al->nexclude; i++)
		if (strncmp(path, al->exclude[i], strlen(al->exclude[i])) == 0)
			return true;
	return false;
}

/* Entry number num (1-based) e: 0, or SMIG_EAUTH with why. */
static int judge(const struct smig_allowlist *al, const struct smig_ima_entry *e, size_t num,
		 char *why, size_t whylen)
{
	char path[1024], got[2 * SMIG_IMA_DIGEST_MAX + 1], want[65];
	size_t k, others = 0;

	smig_printable_copy(e->path, path, sizeof(path)); /* the host's word */
	/* a violation's path is not bound by the replay: no exclusion can excuse it */
	if (e->violation) {
		snprintf(why, whylen, "IMA entry %zu: a measurement violation (file opened for "
			 "write while measured): %s", num, path);
		return SMIG_EAUTH;
	}
	if (excluded(al, e->path))
		return 0;
	smig_hex(e->digest, e->digest_len, got);
	if (strcmp(e->algo, "sha256") != 0 || e->digest_len != 32) {
		snprintf(why, whylen, "IMA entry %zu: %s is measured with %s (%s); the allowlist "
			 "holds sha256 digests only", num, path, e->algo, got);
		return SMIG_EAUTH;
	}
	k = lower_bound(al, e->path);
	if (k == al->n || strcmp(al->v[k].path, e->path) != 0) {
		snprintf(why, whylen, "IMA entry %zu: %s (sha256 %s) is not in the allowlist", num,
			 path, got);
		return SMIG_EAUTH;
	}
	for (size_t i = k; i < al->n && strcmp(al->v[i].path, e->path) == 0; i++, others++)
		if (memcmp(al->v[i].sha256, e->digest, 32) == 0)
			return 0;
	smig_hex(al->v[k].sha256, 32, want);
	if (others > 1)
		snprintf(why, whylen, "IMA entry %zu: %s: sha256 %s, the allowlist has %s and %zu "
			 "others", num, path, got, want, others - 1);
	else
		snprintf(why, whylen, "IMA entry %zu: %s: sha256 %s, the allowlist has %s", num,
			 path, got, want);
	return SMIG_EAUTH;
}

int smig_allowlist_check(const struct smig_allowlist *al, const struct smig_ima *l, size_t from,
			 char *why, size_t whylen)
{
	for (size_t i = from; i < l->n; i++) {
		const struct smig_ima_entry *e = &l->e[i];

		if (e->pcr != SMIG_IMA_PCR)
			continue;
		if (i == 0 && strcmp(e->path, "boot_aggregate") == 0)
			continue; /* its digest stands for the boot's PCRs: checked elsewhere */
		SMIG_GUARD(judge(al, e, i + 1, why, whylen));
	}
	return 0;
}
