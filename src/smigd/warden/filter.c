/*
 * filter.c - the NIC filters of a VM, applied by the warden: what the spec
 * says a NIC may send and receive, enforced with nftables on the VM's taps
 * by the host that runs it, before the guest runs there. One table per VM,
 * "bridge smig_vm_<tap base>", made before QEMU starts and deleted when
 * the VM leaves: a migrated VM takes its protection with it, because the
 * destination builds the same table from the same spec.
 *
 * From the guest: frames only from the NIC's MAC; only IPv4 and ARP; IPv4
 * and ARP only from the listed addresses. To the guest: new TCP
 * connections only to the listed ports (established ones pass).
 */
#include "warden/wd_int.h"
#include "error.h"
#include "log.h"
#include "msg.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_MAX 8192

bool wd_filter_wanted(const struct smig_vmspec *s)
{
	for (size_t i = 0; i < s->nnics; i++)
		if (s->nics[i].filter)
			return true;
	return false;
}

static void table_name(const struct warden *w, const struct smig_vmspec *s, char *out,
		       size_t outlen)
{
	char tap[16];

	wd_res_tap_name(w->cfg.host, s, 0, tap, sizeof(tap));
	tap[strlen(tap) - 2] = '\0'; /* the per-VM part, without "n0" */
	snprintf(out, outlen, "smig_vm_%s", tap);
}

__attribute__((format(printf, 3, 4)))
static void put(char *buf, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*used >= RULES_MAX)
		return;
	va_start(ap, fmt);
	w = vsnprintf(buf + *used, RULES_MAX - *used, fmt, ap);
	va_end(ap);
	*used = w < 0 ? RULES_MAX : *used + (size_t)w;
}

/* "{ 10.0.0.1, 10.0.0.2 }" */
static void ip_set(const struct smig_vm_nic *n, char *out, size_t outlen)
{
	size_t used = 0;

	used += (size_t)snprintf(out, outlen, "{ ");
	for (size_t i = 0; i < n->nips && used < outlen; i++) {
		char a[INET_ADDRSTRLEN];
		struct in_addr in = { .s_addr = n->ips[i] };

		used += (size_t)snprintf(out + used, outlen - used, "%s%s", i ? ", " : "",
					 inet_ntop(AF_INET, &in, a, sizeof(a)));
	}
	if (used < outlen)
		snprintf(out + used, outlen - used, " }");
}

static void nic_rules(const struct warden *w, const struct smig_vmspec *s, size_t i, const char *t,
		      char *buf, size_t *used)
{
	const struct smig_vm_nic *n = &s->nics[i];
	static const char *const hooks[] = { "vm_forward", "vm_input" };
	char tap[16], mac[18], ips[128];

	wd_res_tap_name(w->cfg.host, s, i, tap, sizeof(tap));
	smig_mac_format(n->mac, mac);
	ip_set(n, ips, sizeof(ips));
	for (size_t h = 0; h < 2; h++) {
		const char *c = hooks[h];

		put(buf, used, "add rule bridge %s %s iifname \"%s\" ether saddr != %s drop\n", t, c,
		    tap, mac);
		put(buf, used, "add rule bridge %s %s iifname \"%s\" ether type != { ip, arp } drop\n",
		    t, c, tap);
		put(buf, used, "add rule bridge %s %s iifname \"%s\" arp saddr ether != %s drop\n", t,
		    c, tap, mac);
		if (n->nips == 0) {
			put(buf, used, "add rule bridge %s %s iifname \"%s\" drop\n", t, c, tap);
			continue;
		}
		put(buf, used, "add rule bridge %s %s iifname \"%s\" arp saddr ip != %s drop\n", t, c,
		    tap, ips);
		put(buf, used, "add rule bridge %s %s iifname \"%s\" ip saddr != %s drop\n", t, c,
		    tap, ips);
	}
	if (n->nports) {
		char ports[128];
		size_t pu = (size_t)snprintf(ports, sizeof(ports), "{ ");

		for (size_t k = 0; k < n->nports && pu < sizeof(ports); k++)
			pu += (size_t)snprintf(ports + pu, sizeof(ports) - pu, "%s%u", k ? ", " : "",
					       n->tcp_ports[k]);
		if (pu < sizeof(ports))
			snprintf(ports + pu, sizeof(ports) - pu, " }");
		put(buf, used,
		    "add rule bridge %s vm_forward oifname \"%s\" tcp flags & (syn | ack) == syn "
		    "tcp dport != %s drop\n",
		    t, tap, ports);
	}
}

static int nft_run(const char *cmd, char *err, size_t errlen)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc = 0;

	SMIG_ENSURE(ctx != NULL, SMIG_ENOMEM);
	(void)nft_ctx_buffer_output(ctx);
	(void)nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, cmd) != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);

		snprintf(err, errlen, "%.*s", (int)strcspn(e ? e : "?", "\n"), e ? e : "?");
		rc = SMIG_EIO;
	}
	nft_ctx_free(ctx);
	return rc;
}

int wd_filter_apply(struct warden *w, const struct smig_vmspec *s, char *err, size_t errlen)
{
	char t[64], e[256];
	char *buf;
	size_t used = 0;
	int rc;

	if (!wd_filter_wanted(s))
		return 0;
	buf = malloc(RULES_MAX);
	SMIG_ENSURE(buf != NULL, SMIG_ENOMEM);
	table_name(w, s, t, sizeof(t));
	put(buf, &used, "table bridge %s {}\ndelete table bridge %s\nadd table bridge %s\n", t, t,
	    t);
	put(buf, &used,
	    "add chain bridge %s vm_forward { type filter hook forward priority -5; policy accept; }\n"
	    "add chain bridge %s vm_input { type filter hook input priority -5; policy accept; }\n",
	    t, t);
	for (size_t i = 0; i < s->nnics; i++)
		if (s->nics[i].filter)
			nic_rules(w, s, i, t, buf, &used);
	rc = used >= RULES_MAX ? SMIG_ETOOBIG : nft_run(buf, e, sizeof(e));
	free(buf);
	if (rc < 0) {
		snprintf(err, errlen, "cannot apply the NIC filter (nftables table bridge %s): %s", t,
			 rc == SMIG_ETOOBIG ? "too many rules" : e);
		return rc;
	}
	smig_info("event=nic_filter_applied vm=%s table=\"bridge %s\"", s->name, t);
	return 0;
}

void wd_filter_remove(struct warden *w, const struct smig_vmspec *s)
{
	char t[64], cmd[160], e[256];

	if (!wd_filter_wanted(s))
		return;
	table_name(w, s, t, sizeof(t));
	snprintf(cmd, sizeof(cmd), "table bridge %s {}\ndelete table bridge %s\n", t, t);
	if (nft_run(cmd, e, sizeof(e)) < 0)
		smig_warn("event=nic_filter_remove_failed vm=%s reason=\"%s\"", s->name, e);
}
