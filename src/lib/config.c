/*
 * config.c - strict loading of smigd's config (config.h); the host table
 * and addresses are in hosts.c.
 */
#include "config.h"
#include "error.h"
#include "file.h"
#include "json.h"

#include <openssl/sha.h>

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static int config_tls(const struct smig_json_doc *doc, const json_t *tls,
		      struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "ca", SMIG_J_STRING, true, 0, 0 },
		{ "cert", SMIG_J_STRING, true, 0, 0 },
		{ "key", SMIG_J_STRING, true, 0, 0 },
		{ "warn_days", SMIG_J_INT, false, 1, 3650 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, tls, "tls", fields, ARRAY_LEN(fields), err, errlen));
	if ((v = json_object_get(tls, "warn_days")))
		cfg->tls_warn_days = (int)json_integer_value(v);
	SMIG_GUARD(smig_json_path(doc, tls, "ca", cfg->path, cfg->tls_ca, sizeof(cfg->tls_ca),
			       err, errlen));
	SMIG_GUARD(smig_json_path(doc, tls, "cert", cfg->path, cfg->tls_cert,
			       sizeof(cfg->tls_cert), err, errlen));
	return smig_json_path(doc, tls, "key", cfg->path, cfg->tls_key, sizeof(cfg->tls_key),
			   err, errlen);
}

static int config_control(const struct smig_json_doc *doc, const json_t *ctl,
			  struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "socket", SMIG_J_STRING, true, 0, 0 },
		{ "group", SMIG_J_STRING, false, 0, 0 },
		{ "per_uid", SMIG_J_INT, false, 1, 64 },
	};
	const json_t *group, *v;

	SMIG_GUARD(smig_json_check(doc, ctl, "control", fields, ARRAY_LEN(fields), err, errlen));
	SMIG_GUARD(smig_json_path(doc, ctl, "socket", cfg->path, cfg->control_socket,
			       sizeof(cfg->control_socket), err, errlen));
	group = json_object_get(ctl, "group");
	if (group && snprintf(cfg->control_group, sizeof(cfg->control_group), "%s",
			      json_string_value(group)) >= (int)sizeof(cfg->control_group))
		return smig_json_fail(doc, ctl, "group", err, errlen, "group name too long");
	if ((v = json_object_get(ctl, "per_uid")))
		cfg->control_per_uid = (int)json_integer_value(v);
	return 0;
}

static int config_log(const struct smig_json_doc *doc, const json_t *log,
		      struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "level", SMIG_J_STRING, false, 0, 0 },
		{ "syslog", SMIG_J_BOOL, false, 0, 0 },
		{ "file", SMIG_J_STRING, false, 0, 0 },
		{ "max_kib", SMIG_J_INT, false, 16, 4194304 },
		{ "keep", SMIG_J_INT, false, 1, 1000 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, log, "log", fields, ARRAY_LEN(fields), err, errlen));
	if (json_object_get(log, "file"))
		SMIG_GUARD(smig_json_path(doc, log, "file", cfg->path, cfg->log_file,
				       sizeof(cfg->log_file), err, errlen));
	if ((v = json_object_get(log, "max_kib")))
		cfg->log_max_kib = (int)json_integer_value(v);
	if ((v = json_object_get(log, "keep")))
		cfg->log_keep = (int)json_integer_value(v);
	v = json_object_get(log, "level");
	if (v && smig_log_level_parse(json_string_value(v), &cfg->log_level) < 0)
		return smig_json_fail(doc, log, "level", err, errlen,
				      "log.level must be one of error, warn, info, debug");
	v = json_object_get(log, "syslog");
	if (v)
		cfg->log_syslog = json_is_true(v);
	return 0;
}

/* metrics.listen: a numeric address and a port (no default port: it is not smig's). */
static int config_metrics(const struct smig_json_doc *doc, const json_t *mt,
			  struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "listen", SMIG_J_STRING, true, 0, 0 },
	};
	const char *s;
	const char *close;

	SMIG_GUARD(smig_json_check(doc, mt, "metrics", fields, ARRAY_LEN(fields), err, errlen));
	s = json_string_value(json_object_get(mt, "listen"));
	close = s[0] == '[' ? strchr(s, ']') : NULL;
	if (smig_addr_parse(s, cfg->metrics_addr, sizeof(cfg->metrics_addr), &cfg->metrics_port) < 0 ||
	    (s[0] == '[' ? (close == NULL || close[1] != ':') : strchr(s, ':') == NULL))
		return smig_json_fail(doc, mt, "listen", err, errlen,
				      "metrics.listen must be a numeric address and a port, e.g. "
				      "127.0.0.1:9450");
	return 0;
}

/* store: files (nothing shared) or etcd (docs/architecture.md, "The fleet store"). */
static int config_store(const struct smig_json_doc *doc, const json_t *st,
			struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "backend", SMIG_J_STRING, true, 0, 0 },
		{ "endpoints", SMIG_J_ARRAY, false, 0, 0 },
		{ "ca", SMIG_J_STRING, false, 0, 0 },
		{ "prefix", SMIG_J_STRING, false, 0, 0 },
		{ "lease_ttl_s", SMIG_J_INT, false, 3, 60 },
		{ "timeout_ms", SMIG_J_INT, false, 100, 10000 },
	};
	const char *backend, *prefix;
	const json_t *eps, *v;
	size_t i;

	SMIG_GUARD(smig_json_check(doc, st, "store", fields, ARRAY_LEN(fields), err, errlen));
	backend = json_string_value(json_object_get(st, "backend"));
	if (strcmp(backend, "files") == 0) {
		if (json_object_size(st) > 1)
			return smig_json_fail(doc, st, "backend", err, errlen,
					      "store.backend \"files\" takes no other setting");
		return 0;
	}
	if (strcmp(backend, "etcd") != 0)
		return smig_json_fail(doc, st, "backend", err, errlen,
				      "store.backend is \"files\" (this host's files, the default) "
				      "or \"etcd\"");
	cfg->store_etcd = true;
	eps = json_object_get(st, "endpoints");
	if (json_array_size(eps) == 0 || json_array_size(eps) > SMIG_STORE_ENDPOINTS_MAX)
		return smig_json_fail(doc, st, eps ? "endpoints" : "backend", err, errlen,
				      "store.endpoints must list 1 to %d etcd members, e.g. "
				      "[\"https://10.0.0.1:2379\"]",
				      SMIG_STORE_ENDPOINTS_MAX);
	json_array_foreach(eps, i, v) {
		const char *u = json_string_value(v);

		if (u == NULL || strncmp(u, "https://", 8) != 0 || strlen(u) <= 8 ||
		    strlen(u) > SMIG_STORE_URL_MAX || strpbrk(u, " \t\r\n\"") != NULL)
			return smig_json_fail_at(doc, eps, i, err, errlen,
						 "an etcd endpoint is an https:// URL of at most %d "
						 "bytes (etcd is reached over TLS only)",
						 SMIG_STORE_URL_MAX);
		snprintf(cfg->store_endpoints[i], sizeof(cfg->store_endpoints[i]), "%s", u);
	}
	cfg->nstore_endpoints = json_array_size(eps);
	if (json_object_get(st, "ca"))
		SMIG_GUARD(smig_json_path(doc, st, "ca", cfg->path, cfg->store_ca,
				       sizeof(cfg->store_ca), err, errlen));
	prefix = json_string_value(json_object_get(st, "prefix"));
	if (prefix) {
		size_t n = strlen(prefix);

		if (n < 2 || n > SMIG_STORE_PREFIX_MAX || prefix[0] != '/' || prefix[n - 1] == '/' ||
		    strspn(prefix, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") !=
			    n)
			return smig_json_fail(doc, st, "prefix", err, errlen,
					      "store.prefix is a key path such as \"/smig\": a / "
					      "first, not last, at most %d of A-Z a-z 0-9 / . _ -",
					      SMIG_STORE_PREFIX_MAX);
		snprintf(cfg->store_prefix, sizeof(cfg->store_prefix), "%s", prefix);
	}
	if ((v = json_object_get(st, "lease_ttl_s")))
		cfg->store_lease_ttl_s = (int)json_integer_value(v);
	if ((v = json_object_get(st, "timeout_ms")))
		cfg->store_timeout_ms = (int)json_integer_value(v);
	/* one try of a renewal on every member must fit in half the lease it renews */
	if ((long)cfg->store_timeout_ms * (long)cfg->nstore_endpoints >
	    (long)cfg->store_lease_ttl_s * 1000 / 2)
		return smig_json_fail(doc, st, json_object_get(st, "timeout_ms") ? "timeout_ms" : "backend",
				      err, errlen,
				      "store.timeout_ms (%d) times the %zu endpoints must stay within "
				      "half of store.lease_ttl_s (%d s), or a renewal could outlast "
				      "the lease: raise lease_ttl_s or lower timeout_ms",
				      cfg->store_timeout_ms, cfg->nstore_endpoints,
				      cfg->store_lease_ttl_s);
	return 0;
}

static int config_limits(const struct smig_json_doc *doc, const json_t *lim,
			 struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "handshake_timeout_ms", SMIG_J_INT, false, 100, 600000 },
		{ "request_timeout_ms", SMIG_J_INT, false, 100, 3600000 },
		{ "max_peers", SMIG_J_INT, false, 1, 4096 },
		{ "peers_per_host", SMIG_J_INT, false, 1, 4096 },
		{ "stall_timeout_ms", SMIG_J_INT, false, 500, 3600000 },
		{ "stream_passes", SMIG_J_INT, false, 1, 10000 },
		{ "guest_watch_ms", SMIG_J_INT, false, 0, 600000 },
		{ "agent_timeout_ms", SMIG_J_INT, false, 100, 60000 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, lim, "limits", fields, ARRAY_LEN(fields), err, errlen));
	if ((v = json_object_get(lim, "handshake_timeout_ms")))
		cfg->handshake_timeout_ms = (int)json_integer_value(v);
	if ((v = json_object_get(lim, "request_timeout_ms")))
		cfg->request_timeout_ms = (int)json_integer_value(v);
	if ((v = json_object_get(lim, "max_peers")))
		cfg->max_peers = (int)json_integer_value(v);
	if ((v = json_object_get(lim, "peers_per_host")))
		cfg->peers_per_host = (int)json_integer_value(v);
	if ((v = json_object_get(lim, "stall_timeout_ms")))
		cfg->stall_timeout_ms = (int)json_integer_value(v);
	if ((v = json_object_get(lim, "stream_passes")))
		cfg->stream_passes = (int)json_integer_value(v);
	if ((v = json_object_get(lim, "guest_watch_ms")))
		cfg->guest_watch_ms = (int)json_integer_value(v);
	if ((v = json_object_get(lim, "agent_timeout_ms")))
		cfg->agent_timeout_ms = (int)json_integer_value(v);
	/* the source's ping runs while nothing else moves: it must end before the stall does */
	if (cfg->agent_timeout_ms >= cfg->stall_timeout_ms)
		return smig_json_fail(doc, lim, v ? "agent_timeout_ms" : "stall_timeout_ms", err,
				      errlen,
				      "limits.agent_timeout_ms (%d) must be below limits."
				      "stall_timeout_ms (%d): a silent guest agent would stall every "
				      "migration of its VM",
				      cfg->agent_timeout_ms, cfg->stall_timeout_ms);
	return 0;
}

static int config_qemu(const struct smig_json_doc *doc, const json_t *q,
		       struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "binary", SMIG_J_STRING, false, 0, 0 },
		{ "accel", SMIG_J_STRING, false, 0, 0 },
		{ "swtpm", SMIG_J_STRING, false, 0, 0 },
		{ "auto_converge", SMIG_J_BOOL, false, 0, 0 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, q, "qemu", fields, ARRAY_LEN(fields), err, errlen));
	if ((v = json_object_get(q, "binary")))
		snprintf(cfg->qemu_binary, sizeof(cfg->qemu_binary), "%s", json_string_value(v));
	if ((v = json_object_get(q, "swtpm")))
		snprintf(cfg->swtpm_binary, sizeof(cfg->swtpm_binary), "%s", json_string_value(v));
	if ((v = json_object_get(q, "auto_converge")))
		cfg->auto_converge = json_is_true(v);
	v = json_object_get(q, "accel");
	if (v && strcmp(json_string_value(v), "kvm:tcg") != 0 &&
	    strcmp(json_string_value(v), "kvm") != 0 && strcmp(json_string_value(v), "tcg") != 0)
		return smig_json_fail(doc, q, "accel", err, errlen,
				      "qemu.accel must be kvm:tcg, kvm or tcg");
	if (v)
		snprintf(cfg->qemu_accel, sizeof(cfg->qemu_accel), "%s", json_string_value(v));
	return 0;
}

/*
 * Where VMs are confined: the uids their processes get (one per VM, never
 * a uid of anything else: the range must not overlap the system's users)
 * and what their cgroups allow.
 */
static int config_confinement(const struct smig_json_doc *doc, const json_t *c,
			      struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "vm_uid_first", SMIG_J_INT, false, 1000, 2147483647LL },
		{ "vm_uid_count", SMIG_J_INT, false, 1, 1048576 },
		{ "vm_memory_overhead_mib", SMIG_J_INT, false, 0, 1048576 },
		{ "cgroups", SMIG_J_BOOL, false, 0, 0 },
		{ "worker_user", SMIG_J_STRING, false, 0, 0 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, c, "confinement", fields, ARRAY_LEN(fields), err,
				   errlen));
	if ((v = json_object_get(c, "vm_uid_first")))
		cfg->vm_uid_first = (uint32_t)json_integer_value(v);
	if ((v = json_object_get(c, "vm_uid_count")))
		cfg->vm_uid_count = (uint32_t)json_integer_value(v);
	if ((v = json_object_get(c, "vm_memory_overhead_mib")))
		cfg->vm_memory_overhead_mib = (uint32_t)json_integer_value(v);
	if ((v = json_object_get(c, "cgroups")))
		cfg->cgroups = json_is_true(v);
	v = json_object_get(c, "worker_user");
	if (v && !smig_name_valid(json_string_value(v)))
		return smig_json_fail(doc, c, "worker_user", err, errlen,
				      "confinement.worker_user must be a user name");
	if (v)
		snprintf(cfg->worker_user, sizeof(cfg->worker_user), "%s", json_string_value(v));
	if ((uint64_t)cfg->vm_uid_first + cfg->vm_uid_count > 2147483647ULL)
		return smig_json_fail(doc, c, "vm_uid_count", err, errlen,
				      "confinement.vm_uid_first + vm_uid_count must stay below "
				      "2147483647");
	return 0;
}

static int config_audit(const struct smig_json_doc *doc, const json_t *a,
			struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "file", SMIG_J_STRING, false, 0, 0 },
		{ "checkpoint_records", SMIG_J_INT, false, 1, 1000000 },
		{ "checkpoint_interval_s", SMIG_J_INT, false, 1, 86400 },
		{ "max_kib", SMIG_J_INT, false, 16, 262144 },
		{ "keep", SMIG_J_INT, false, 1, 1000 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, a, "audit", fields, ARRAY_LEN(fields), err, errlen));
	if (json_object_get(a, "file"))
		SMIG_GUARD(smig_json_path(doc, a, "file", cfg->path, cfg->audit_file,
				       sizeof(cfg->audit_file), err, errlen));
	if ((v = json_object_get(a, "checkpoint_records")))
		cfg->audit_checkpoint_records = (int)json_integer_value(v);
	if ((v = json_object_get(a, "checkpoint_interval_s")))
		cfg->audit_checkpoint_interval_s = (int)json_integer_value(v);
	if ((v = json_object_get(a, "max_kib")))
		cfg->audit_max_kib = (int)json_integer_value(v);
	if ((v = json_object_get(a, "keep")))
		cfg->audit_keep = (int)json_integer_value(v);
	return 0;
}

static int config_components(const struct smig_json_doc *doc, const json_t *arr,
			     struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "path", SMIG_J_STRING, true, 0, 0 },
	};
	const json_t *c;
	size_t i;

	if (json_array_size(arr) > ARRAY_LEN(cfg->components))
		return smig_json_fail_at(doc, arr, 0, err, errlen, "at most %zu components",
					 ARRAY_LEN(cfg->components));
	json_array_foreach(arr, i, c) {
		struct smig_config_component *k = &cfg->components[i];

		if (!json_is_object(c))
			return smig_json_fail_at(doc, arr, i, err, errlen,
						 "components[%zu] must be an object", i);
		SMIG_GUARD(smig_json_check(doc, c, "component", fields, ARRAY_LEN(fields), err,
					   errlen));
		if (!smig_name_valid(json_string_value(json_object_get(c, "name"))))
			return smig_json_fail(doc, c, "name", err, errlen,
					      "component name must be a name");
		snprintf(k->name, sizeof(k->name), "%s",
			 json_string_value(json_object_get(c, "name")));
		SMIG_GUARD(smig_json_path(doc, c, "path", cfg->path, k->path, sizeof(k->path), err,
				       errlen));
		cfg->ncomponents++;
	}
	return 0;
}

static int config_tpm(const struct smig_json_doc *doc, const json_t *t, struct smig_config *cfg,
		      char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "tcti", SMIG_J_STRING, true, 0, 0 },
		{ "pcrs", SMIG_J_ARRAY, true, 0, 0 },
		{ "event_log", SMIG_J_STRING, false, 0, 0 },
		{ "ima_log", SMIG_J_STRING, false, 0, 0 },
		{ "timeout_s", SMIG_J_INT, false, 1, 600 },
	};
	static const struct {
		const char *key;
		size_t off;
	} logs[] = {
		{ "event_log", offsetof(struct smig_config, tpm_event_log) },
		{ "ima_log", offsetof(struct smig_config, tpm_ima_log) },
	};
	const json_t *pcrs, *v;
	const char *tcti;
	size_t i;

	SMIG_GUARD(smig_json_check(doc, t, "attestation.tpm", fields, ARRAY_LEN(fields), err,
				   errlen));
	tcti = json_string_value(json_object_get(t, "tcti"));
	if (tcti[0] == '\0' || strlen(tcti) >= sizeof(cfg->tpm_tcti))
		return smig_json_fail(doc, t, "tcti", err, errlen,
				      "tpm.tcti: a TCTI such as \"device:/dev/tpmrm0\"");
	snprintf(cfg->tpm_tcti, sizeof(cfg->tpm_tcti), "%s", tcti);
	pcrs = json_object_get(t, "pcrs");
	if (json_array_size(pcrs) == 0 || json_array_size(pcrs) > 24)
		return smig_json_fail(doc, t, "pcrs", err, errlen, "tpm.pcrs: 1 to 24 PCR numbers");
	json_array_foreach(pcrs, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 23)
			return smig_json_fail_at(doc, pcrs, i, err, errlen,
						 "tpm.pcrs[%zu] must be a PCR number 0-23", i);
		for (size_t k = 0; k < cfg->ntpm_pcrs; k++)
			if (cfg->tpm_pcrs[k] == (unsigned)json_integer_value(v))
				return smig_json_fail_at(doc, pcrs, i, err, errlen,
							 "tpm.pcrs[%zu] repeats", i);
		cfg->tpm_pcrs[cfg->ntpm_pcrs++] = (unsigned)json_integer_value(v);
	}
	if ((v = json_object_get(t, "timeout_s")))
		cfg->tpm_timeout_s = (unsigned)json_integer_value(v);
	for (i = 0; i < ARRAY_LEN(logs); i++) {
		const char *path = json_string_value(json_object_get(t, logs[i].key));

		if (path == NULL)
			continue;
		if (path[0] != '/' || strlen(path) >= PATH_MAX)
			return smig_json_fail(doc, t, logs[i].key, err, errlen,
					      "tpm.%s must be an absolute path", logs[i].key);
		snprintf((char *)cfg + logs[i].off, PATH_MAX, "%s", path);
	}
	return 0;
}

static int config_attestation(const struct smig_json_doc *doc, const json_t *a,
			      struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "ivt", SMIG_J_STRING, false, 0, 0 },
		{ "components", SMIG_J_ARRAY, false, 0, 0 },
		{ "interval_s", SMIG_J_INT, false, 1, 3600 },
		{ "evacuate", SMIG_J_BOOL, false, 0, 0 },
		{ "evacuate_parallel", SMIG_J_INT, false, 1, 16 },
		{ "tpm", SMIG_J_OBJECT, false, 0, 0 },
		{ "ek_roots", SMIG_J_STRING, false, 0, 0 },
	};
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, a, "attestation", fields, ARRAY_LEN(fields), err,
				   errlen));
	if (json_object_get(a, "ivt"))
		SMIG_GUARD(smig_json_path(doc, a, "ivt", cfg->path, cfg->ivt_file,
				       sizeof(cfg->ivt_file), err, errlen));
	if (json_object_get(a, "ek_roots"))
		SMIG_GUARD(smig_json_path(doc, a, "ek_roots", cfg->path, cfg->ek_roots,
				       sizeof(cfg->ek_roots), err, errlen));
	if ((v = json_object_get(a, "components")))
		SMIG_GUARD(config_components(doc, v, cfg, err, errlen));
	if ((v = json_object_get(a, "interval_s")))
		cfg->attest_interval_s = (int)json_integer_value(v);
	if ((v = json_object_get(a, "evacuate")))
		cfg->evacuate = json_is_true(v);
	if ((v = json_object_get(a, "evacuate_parallel")))
		cfg->evacuate_parallel = (int)json_integer_value(v);
	if ((v = json_object_get(a, "tpm")))
		SMIG_GUARD(config_tpm(doc, v, cfg, err, errlen));
	return 0;
}

static int config_ids_rules(const struct smig_json_doc *doc, const json_t *arr,
			    struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "kind", SMIG_J_STRING, true, 0, 0 },
		{ "count", SMIG_J_INT, true, 1, 16 },
		{ "window_s", SMIG_J_INT, true, 1, 86400 },
		{ "ban_s", SMIG_J_INT, true, 1, SMIG_IDS_BAN_MAX_S },
	};
	const json_t *r;
	size_t i;

	if (json_array_size(arr) > ARRAY_LEN(cfg->ids_rules))
		return smig_json_fail_at(doc, arr, 0, err, errlen, "at most %zu rules",
					 ARRAY_LEN(cfg->ids_rules));
	json_array_foreach(arr, i, r) {
		struct smig_ids_rule *k = &cfg->ids_rules[i];

		if (!json_is_object(r))
			return smig_json_fail_at(doc, arr, i, err, errlen,
						 "rules[%zu] must be an object", i);
		SMIG_GUARD(smig_json_check(doc, r, "IDS rule", fields, ARRAY_LEN(fields), err,
					   errlen));
		if (smig_sec_kind_parse(json_string_value(json_object_get(r, "kind")), &k->kind) < 0)
			return smig_json_fail(doc, r, "kind", err, errlen,
					      "rules[%zu].kind is not an event kind (tls_failure, "
					      "unknown_peer, protocol_violation, ...)", i);
		if (!smig_sec_kind_bannable(k->kind))
			return smig_json_fail(doc, r, "kind", err, errlen,
					      "rules[%zu].kind %s cannot ban: %s; remove the rule", i,
					      smig_sec_kind_name(k->kind),
					      k->kind == SMIG_SEC_RECORD_AUTH_FAILURE
						      ? "anyone on the path can make a record fail, so "
							"it is counted and raises a path alarm instead "
							"(docs/ids.md)"
						      : "it is the monitor's own outcome, not an address's "
							"doing");
		k->count = (int)json_integer_value(json_object_get(r, "count"));
		k->window_s = (int)json_integer_value(json_object_get(r, "window_s"));
		k->ban_s = (int)json_integer_value(json_object_get(r, "ban_s"));
		cfg->nids_rules++;
	}
	return 0;
}

static int config_firewall(const struct smig_json_doc *doc, const json_t *f,
			   struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "hosts_only", SMIG_J_BOOL, false, 0, 0 },
		{ "conn_per_s", SMIG_J_INT, false, 1, 100000 },
		{ "conn_burst", SMIG_J_INT, false, 1, 100000 },
		{ "never_ban", SMIG_J_ARRAY, false, 0, 0 },
		{ "pending_per_source", SMIG_J_INT, false, 1, 4096 },
		{ "conns_per_source", SMIG_J_INT, false, 1, 4096 },
		{ "rules", SMIG_J_ARRAY, false, 0, 0 },
		{ "nftables", SMIG_J_BOOL, false, 0, 0 },
	};
	const json_t *v;
	size_t i;

	SMIG_GUARD(smig_json_check(doc, f, "firewall", fields, ARRAY_LEN(fields), err, errlen));
	if ((v = json_object_get(f, "nftables")))
		cfg->nftables = json_is_true(v);
	if ((v = json_object_get(f, "pending_per_source")))
		cfg->pending_per_source = (int)json_integer_value(v);
	if ((v = json_object_get(f, "conns_per_source")))
		cfg->conns_per_source = (int)json_integer_value(v);
	if ((v = json_object_get(f, "rules")))
		SMIG_GUARD(config_ids_rules(doc, v, cfg, err, errlen));
	if ((v = json_object_get(f, "hosts_only")))
		cfg->hosts_only = json_is_true(v);
	if ((v = json_object_get(f, "conn_per_s")))
		cfg->conn_rate = (double)json_integer_value(v);
	if ((v = json_object_get(f, "conn_burst")))
		cfg->conn_burst = (double)json_integer_value(v);
	v = json_object_get(f, "never_ban");
	if (json_array_size(v) > ARRAY_LEN(cfg->never_ban))
		return smig_json_fail(doc, f, "never_ban", err, errlen, "at most %zu addresses",
				      ARRAY_LEN(cfg->never_ban));
	for (i = 0; i < json_array_size(v); i++) {
		uint16_t port;

		if (smig_addr_parse(json_string_value(json_array_get(v, i)),
				    cfg->never_ban[i], SMIG_ADDR_MAX, &port) < 0)
			return smig_json_fail_at(doc, v, i, err, errlen,
						 "never_ban[%zu] must be a numeric address", i);
		cfg->nnever_ban++;
	}
	return 0;
}

/* migration.policies[i]: one policy, its name unique among them. */
static int config_mig_policy(const struct smig_json_doc *doc, const json_t *arr, size_t i,
			     const json_t *e, struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "vm_labels", SMIG_J_OBJECT, false, 0, 0 },
		{ "max_bandwidth_mib", SMIG_J_INT, false, 1, 1000000 },
		{ "downtime_ms", SMIG_J_INT, false, 1, 60000 },
		{ "completion_timeout_per_gib_s", SMIG_J_INT, false, 1, 86400 },
		{ "progress_timeout_s", SMIG_J_INT, false, 1, 86400 },
		{ "on_timeout", SMIG_J_STRING, false, 0, 0 },
		{ "auto_converge", SMIG_J_BOOL, false, 0, 0 },
	};
	struct smig_mig_policy *p = &cfg->mig_policies[cfg->nmig_policies];
	const char *name, *act;
	const json_t *v;

	if (!json_is_object(e))
		return smig_json_fail_at(doc, arr, i, err, errlen,
					 "migration.policies[%zu] must be an object", i);
	SMIG_GUARD(smig_json_check(doc, e, "migration.policies[]", fields, ARRAY_LEN(fields), err,
				   errlen));
	memset(p, 0, sizeof(*p));
	p->auto_converge = -1;
	name = json_string_value(json_object_get(e, "name"));
	if (!smig_name_valid(name))
		return smig_json_fail(doc, e, "name", err, errlen,
				      "migration.policies[%zu].name must be a name (letters, digits, "
				      "'.', '_', '-')", i);
	for (size_t k = 0; k < cfg->nmig_policies; k++)
		if (strcmp(cfg->mig_policies[k].name, name) == 0)
			return smig_json_fail(doc, e, "name", err, errlen,
					      "migration.policies[%zu]: a second policy named %s", i,
					      name);
	snprintf(p->name, sizeof(p->name), "%s", name);
	if ((v = json_object_get(e, "vm_labels")))
		SMIG_GUARD(smig_labels_parse(doc, v, p->sel, SMIG_MIG_POLICY_LABELS, &p->nsel, err,
					     errlen));
	if ((v = json_object_get(e, "max_bandwidth_mib")))
		p->max_bandwidth = (int)json_integer_value(v);
	if ((v = json_object_get(e, "downtime_ms")))
		p->downtime_ms = (int)json_integer_value(v);
	if ((v = json_object_get(e, "completion_timeout_per_gib_s")))
		p->completion_timeout_per_gib_s = (int)json_integer_value(v);
	if ((v = json_object_get(e, "progress_timeout_s")))
		p->progress_timeout_s = (int)json_integer_value(v);
	if ((v = json_object_get(e, "auto_converge")))
		p->auto_converge = json_is_true(v);
	act = json_string_value(json_object_get(e, "on_timeout"));
	if (act && strcmp(act, "abort") != 0 && strcmp(act, "escalate") != 0)
		return smig_json_fail(doc, e, "on_timeout", err, errlen,
				      "migration.policies[%zu].on_timeout must be abort or escalate", i);
	p->escalate_on_timeout = act && strcmp(act, "escalate") == 0;
	cfg->nmig_policies++;
	return 0;
}

/*
 * migration: how many streams carry a migration, how one that does not
 * converge is escalated, and when it gives up; how many leave at once, and
 * the policies of groups of VMs.
 */
static int config_migration(const struct smig_json_doc *doc, const json_t *o,
			    struct smig_config *cfg, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "escalate_after_s", SMIG_J_INT, false, 1, 3600 },
		{ "downtime_steps_ms", SMIG_J_ARRAY, false, 0, 0 },
		{ "completion_timeout_s", SMIG_J_INT, false, 0, 86400 },
		{ "channels", SMIG_J_INT, false, 0, 16 },
		{ "auto_converge_step", SMIG_J_BOOL, false, 0, 0 },
		{ "parallel_outbound", SMIG_J_INT, false, 0, 64 },
		{ "parallel_inbound", SMIG_J_INT, false, 0, 64 },
		{ "policies", SMIG_J_ARRAY, false, 0, 0 },
	};
	const json_t *steps, *v;
	size_t i;

	SMIG_GUARD(smig_json_check(doc, o, "migration", fields, ARRAY_LEN(fields), err, errlen));
	if ((v = json_object_get(o, "parallel_outbound")))
		cfg->parallel_outbound = (int)json_integer_value(v);
	if ((v = json_object_get(o, "parallel_inbound")))
		cfg->parallel_inbound = (int)json_integer_value(v);
	if ((v = json_object_get(o, "policies"))) {
		if (json_array_size(v) > SMIG_MIG_POLICIES_MAX)
			return smig_json_fail(doc, o, "policies", err, errlen,
					      "migration.policies: at most %d policies",
					      SMIG_MIG_POLICIES_MAX);
		cfg->nmig_policies = 0;
		json_array_foreach(v, i, steps)
			SMIG_GUARD(config_mig_policy(doc, v, i, steps, cfg, err, errlen));
	}
	if ((v = json_object_get(o, "escalate_after_s")))
		cfg->escalate_after_s = (int)json_integer_value(v);
	if ((v = json_object_get(o, "completion_timeout_s")))
		cfg->completion_timeout_s = (int)json_integer_value(v);
	if ((v = json_object_get(o, "channels")))
		cfg->mig_channels = (int)json_integer_value(v);
	if ((v = json_object_get(o, "auto_converge_step")))
		cfg->auto_converge_step = json_is_true(v);
	steps = json_object_get(o, "downtime_steps_ms");
	if (steps == NULL)
		return 0;
	if (json_array_size(steps) > ARRAY_LEN(cfg->downtime_steps_ms))
		return smig_json_fail(doc, o, "downtime_steps_ms", err, errlen,
				      "migration.downtime_steps_ms: at most %zu steps",
				      ARRAY_LEN(cfg->downtime_steps_ms));
	cfg->ndowntime_steps = 0;
	json_array_foreach(steps, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 60000 ||
		    (i > 0 && json_integer_value(v) <= cfg->downtime_steps_ms[i - 1]))
			return smig_json_fail_at(doc, steps, i, err, errlen,
						 "migration.downtime_steps_ms[%zu] must be 1-60000 ms "
						 "and above the step before it", i);
		cfg->downtime_steps_ms[cfg->ndowntime_steps++] = (int)json_integer_value(v);
	}
	return 0;
}

static int config_top(const struct smig_json_doc *doc, struct smig_config *cfg, char *err,
		      size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "host", SMIG_J_STRING, true, 0, 0 },
		{ "listen", SMIG_J_STRING, true, 0, 0 },
		{ "control", SMIG_J_OBJECT, true, 0, 0 },
		{ "state_dir", SMIG_J_STRING, true, 0, 0 },
		{ "tls", SMIG_J_OBJECT, true, 0, 0 },
		{ "hosts_file", SMIG_J_STRING, true, 0, 0 },
		{ "log", SMIG_J_OBJECT, false, 0, 0 },
		{ "limits", SMIG_J_OBJECT, false, 0, 0 },
		{ "qemu", SMIG_J_OBJECT, false, 0, 0 },
		{ "policy", SMIG_J_STRING, false, 0, 0 },
		{ "audit", SMIG_J_OBJECT, false, 0, 0 },
		{ "attestation", SMIG_J_OBJECT, false, 0, 0 },
		{ "firewall", SMIG_J_OBJECT, false, 0, 0 },
		{ "pools", SMIG_J_OBJECT, false, 0, 0 },
		{ "networks", SMIG_J_OBJECT, false, 0, 0 },
		{ "firmware", SMIG_J_OBJECT, false, 0, 0 },
		{ "capacity", SMIG_J_OBJECT, false, 0, 0 },
		{ "confinement", SMIG_J_OBJECT, false, 0, 0 },
		{ "metrics", SMIG_J_OBJECT, false, 0, 0 },
		{ "migration", SMIG_J_OBJECT, false, 0, 0 },
		{ "store", SMIG_J_OBJECT, false, 0, 0 },
	};
	const json_t *root = doc->root;
	const json_t *v;

	SMIG_GUARD(smig_json_check(doc, root, "config", fields, ARRAY_LEN(fields), err, errlen));
	v = json_object_get(root, "host");
	if (!smig_name_valid(json_string_value(v)))
		return smig_json_fail(doc, root, "host", err, errlen,
				      "host must be 1-63 characters of A-Z a-z 0-9 . _ -");
	snprintf(cfg->host, sizeof(cfg->host), "%s", json_string_value(v));
	v = json_object_get(root, "listen");
	if (smig_addr_parse(json_string_value(v), cfg->listen_addr, sizeof(cfg->listen_addr),
			    &cfg->listen_port) < 0)
		return smig_json_fail(doc, root, "listen", err, errlen,
				      "listen must be a numeric address with optional :port");
	SMIG_GUARD(config_control(doc, json_object_get(root, "control"), cfg, err, errlen));
	SMIG_GUARD(smig_json_path(doc, root, "state_dir", cfg->path, cfg->state_dir,
			       sizeof(cfg->state_dir), err, errlen));
	SMIG_GUARD(config_tls(doc, json_object_get(root, "tls"), cfg, err, errlen));
	SMIG_GUARD(smig_json_path(doc, root, "hosts_file", cfg->path, cfg->hosts_file,
			       sizeof(cfg->hosts_file), err, errlen));
	if ((v = json_object_get(root, "log")))
		SMIG_GUARD(config_log(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "limits")))
		SMIG_GUARD(config_limits(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "metrics")))
		SMIG_GUARD(config_metrics(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "migration")))
		SMIG_GUARD(config_migration(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "store")))
		SMIG_GUARD(config_store(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "qemu")))
		SMIG_GUARD(config_qemu(doc, v, cfg, err, errlen));
	if (json_object_get(root, "policy"))
		SMIG_GUARD(smig_json_path(doc, root, "policy", cfg->path, cfg->policy_file,
				       sizeof(cfg->policy_file), err, errlen));
	if ((v = json_object_get(root, "audit")))
		SMIG_GUARD(config_audit(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "attestation")))
		SMIG_GUARD(config_attestation(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "firewall")))
		SMIG_GUARD(config_firewall(doc, v, cfg, err, errlen));
	if ((v = json_object_get(root, "confinement")))
		SMIG_GUARD(config_confinement(doc, v, cfg, err, errlen));
	return smig_catalog_parse(doc, root, cfg->path, &cfg->catalog, err, errlen);
}

static void config_defaults(struct smig_config *cfg, const char *name)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	smig_catalog_defaults(&cfg->catalog);
	cfg->log_level = SMIG_LOG_INFO;
	cfg->handshake_timeout_ms = 5000;
	cfg->request_timeout_ms = 10000;
	cfg->max_peers = 64;
	cfg->peers_per_host = 8;
	cfg->stall_timeout_ms = 30000;
	cfg->stream_passes = 64;
	cfg->guest_watch_ms = 5000;
	cfg->agent_timeout_ms = 1000;
	cfg->auto_converge = true;
	cfg->auto_converge_step = true;
	cfg->audit_checkpoint_records = 64;
	cfg->audit_checkpoint_interval_s = 60;
	cfg->audit_max_kib = 65536;
	cfg->control_per_uid = 8;
	cfg->log_max_kib = 65536;
	cfg->log_keep = 5;
	cfg->audit_keep = 8;
	cfg->attest_interval_s = 10;
	cfg->tpm_timeout_s = 10;
	/* Nova's way: the downtime limit up in steps while it does not converge, then give up */
	cfg->escalate_after_s = 10;
	cfg->downtime_steps_ms[0] = 500;
	cfg->downtime_steps_ms[1] = 1000;
	cfg->ndowntime_steps = 2;
	cfg->completion_timeout_s = 600;
	cfg->parallel_outbound = 2;
	cfg->parallel_inbound = 4;
	cfg->tls_warn_days = 30;
	snprintf(cfg->store_prefix, sizeof(cfg->store_prefix), "/smig");
	cfg->store_lease_ttl_s = 10;
	cfg->store_timeout_ms = 1000;
	cfg->evacuate = true;
	cfg->evacuate_parallel = 2;
	cfg->hosts_only = true;
	cfg->conn_rate = 20;
	cfg->conn_burst = 40;
	cfg->pending_per_source = 8;
	cfg->conns_per_source = 16;
	snprintf(cfg->qemu_binary, sizeof(cfg->qemu_binary), "qemu-system-x86_64");
	snprintf(cfg->qemu_accel, sizeof(cfg->qemu_accel), "kvm:tcg");
	snprintf(cfg->swtpm_binary, sizeof(cfg->swtpm_binary), "swtpm");
	cfg->vm_uid_first = SMIG_VM_UID_FIRST;
	cfg->vm_uid_count = SMIG_VM_UID_COUNT;
	cfg->vm_memory_overhead_mib = 512;
	cfg->cgroups = true;
	snprintf(cfg->worker_user, sizeof(cfg->worker_user), "smig");
}

/* Reads the config in text, or in the file name when text is NULL. */
static int config_read(const char *name, const char *text, size_t len, struct smig_config *cfg,
		       char *err, size_t errlen)
{
	struct smig_json_doc doc;
	char *own = NULL;
	int rc;

	config_defaults(cfg, name);
	if (text == NULL) {
		rc = smig_file_read(name, (size_t)SMIG_JSON_MAX_FILE, &own, &len, err, errlen);
		if (rc < 0)
			return rc == SMIG_ETOOBIG ? SMIG_ECONFIG : rc;
		text = own;
	}
	/* the measurement of the config is of the text in force, not of the file on disk now */
	SHA256((const unsigned char *)text, len, cfg->sha256);
	rc = smig_json_load(&doc, name, text, len, err, errlen);
	free(own);
	SMIG_GUARD(rc);
	rc = config_top(&doc, cfg, err, errlen);
	smig_json_doc_clear(&doc);
	return rc;
}

int smig_config_parse(const char *name, const char *text, size_t len,
		      struct smig_config *cfg, char *err, size_t errlen)
{
	return config_read(name, text, len, cfg, err, errlen);
}

int smig_config_load(const char *path, struct smig_config *cfg, char *err, size_t errlen)
{
	return config_read(path, NULL, 0, cfg, err, errlen);
}

const struct smig_mig_policy *smig_mig_policy_for(const struct smig_config *cfg,
						  const struct smig_label *v, size_t n)
{
	const struct smig_mig_policy *best = NULL;

	for (size_t i = 0; i < cfg->nmig_policies; i++) {
		const struct smig_mig_policy *p = &cfg->mig_policies[i];

		if (smig_labels_match(p->sel, p->nsel, v, n) && (best == NULL || p->nsel > best->nsel))
			best = p;
	}
	return best;
}
