/*
 * label.h - key=value labels on VMs and hosts, and label selectors.
 *
 * Labels are how policy scopes rules to groups of VMs and hosts without
 * naming each one. Keys and values are names (smig_name_valid); a selector
 * is a set of key=glob pairs, all of which must match.
 */
#ifndef SMIG_LABEL_H
#define SMIG_LABEL_H

#include "json.h"
#include "msg.h"

#include <stdbool.h>
#include <stddef.h>

struct smig_label {
	char key[SMIG_NAME_MAX + 1];
	char value[SMIG_NAME_MAX + 1];
};

/*
 * Reads a JSON object of name-valued labels into out[0..max); *n gets the
 * count. Errors name file:line:column through doc.
 */
int smig_labels_parse(const struct smig_json_doc *doc, const json_t *obj,
		      struct smig_label *out, size_t max, size_t *n, char *err, size_t errlen);
/* The value of key, or NULL. */
const char *smig_labels_get(const struct smig_label *v, size_t n, const char *key);
/* True if every selector entry's value (an fnmatch glob) matches that label. */
bool smig_labels_match(const struct smig_label *sel, size_t nsel, const struct smig_label *v,
		       size_t n);

#endif
