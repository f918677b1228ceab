/*
 * label.c - labels and label selectors (see label.h).
 */
#include "label.h"
#include "error.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

int smig_labels_parse(const struct smig_json_doc *doc, const json_t *obj,
		      struct smig_label *out, size_t max, size_t *n, char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	*n = 0;
	if (json_object_size(obj) > max)
		return smig_json_fail(doc, obj, NULL, err, errlen, "at most %zu labels", max);
	json_object_foreach((json_t *)obj, key, v) {
		if (!smig_name_valid(key) || !json_is_string(v) ||
		    !smig_name_valid(json_string_value(v)))
			return smig_json_fail(doc, obj, key, err, errlen,
					      "label %.64s: keys and values are names "
					      "(1-63 of A-Z a-z 0-9 . _ -)", key);
		snprintf(out[*n].key, sizeof(out[0].key), "%s", key);
		snprintf(out[*n].value, sizeof(out[0].value), "%s", json_string_value(v));
		(*n)++;
	}
	return 0;
}

const char *smig_labels_get(const struct smig_label *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].key, key) == 0)
			return v[i].value;
	return NULL;
}

bool smig_labels_match(const struct smig_label *sel, size_t nsel, const struct smig_label *v,
		       size_t n)
{
	for (size_t i = 0; i < nsel; i++) {
		const char *val = smig_labels_get(v, n, sel[i].key);

		if (val == NULL || fnmatch(sel[i].value, val, 0) != 0)
			return false;
	}
	return true;
}
