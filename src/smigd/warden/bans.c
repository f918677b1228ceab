/*
 * bans.c - the optional kernel-level drop of banned addresses
 * (firewall.nftables): a table "inet smig" with two timed sets, banned4
 * and banned6, and an input chain that drops their packets to smigd's
 * port before they reach the listener. Bans from the IDS become set
 * elements with the ban's timeout, so the kernel lifts them by itself;
 * an unban deletes the element. The table is made afresh at start. The
 * worker's IDS decides the bans; the warden, which alone may change
 * nftables, checks each address is a numeric IPv4 or IPv6 one.
 */
#include "warden/wd_int.h"
#include "error.h"
#include "log.h"

#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wd_bans {
	struct nft_ctx *ctx;
};

/* Runs one nft command; logs and returns SMIG_EIO on failure. */
static int run(struct nft_ctx *ctx, const char *cmd)
{
	if (nft_run_cmd_from_buffer(ctx, cmd) == 0)
		return 0;
	smig_err("event=nft_failed cmd=\"%s\" reason=\"%s\"", cmd,
		 nft_ctx_get_error_buffer(ctx) ? nft_ctx_get_error_buffer(ctx) : "?");
	return SMIG_EIO;
}

int wd_bans_open(struct warden *w)
{
	struct wd_bans *n;
	char cmd[512];
	int rc;

	if (!w->cfg.nftables)
		return 0;
	n = calloc(1, sizeof(*n));
	SMIG_ENSURE(n != NULL, SMIG_ENOMEM);
	n->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (n->ctx == NULL) {
		free(n);
		return SMIG_ENOMEM;
	}
	(void)nft_ctx_buffer_output(n->ctx);
	(void)nft_ctx_buffer_error(n->ctx);
	(void)nft_run_cmd_from_buffer(n->ctx, "delete table inet smig");
	snprintf(cmd, sizeof(cmd),
		 "add table inet smig\n"
		 "add set inet smig banned4 { type ipv4_addr; flags timeout; }\n"
		 "add set inet smig banned6 { type ipv6_addr; flags timeout; }\n"
		 "add chain inet smig input { type filter hook input priority -10; policy accept; }\n"
		 "add rule inet smig input ip saddr @banned4 tcp dport %u drop\n"
		 "add rule inet smig input ip6 saddr @banned6 tcp dport %u drop\n",
		 (unsigned)w->cfg.listen_port, (unsigned)w->cfg.listen_port);
	rc = run(n->ctx, cmd);
	if (rc < 0) {
		nft_ctx_free(n->ctx);
		free(n);
		return rc;
	}
	smig_info("event=nft_ready table=\"inet smig\" port=%u", (unsigned)w->cfg.listen_port);
	w->bans = n;
	return 0;
}

void wd_bans_close(struct warden *w)
{
	if (w->bans == NULL)
		return;
	nft_ctx_free(w->bans->ctx);
	free(w->bans);
	w->bans = NULL;
}

/* "banned4" or "banned6" for a numeric address; NULL if it is neither. */
static const char *set_for(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return "banned4";
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return "banned6";
	return NULL;
}

int wd_ban(struct warden *w, const char *addr, int64_t ms)
{
	const char *set = set_for(addr);
	char cmd[256];

	SMIG_ENSURE(set != NULL && ms > 0, SMIG_EINVAL);
	if (w->bans == NULL)
		return 0;
	snprintf(cmd, sizeof(cmd), "add element inet smig %s { %s timeout %llds }", set, addr,
		 (long long)((ms + 999) / 1000));
	return run(w->bans->ctx, cmd);
}

int wd_unban(struct warden *w, const char *addr)
{
	const char *set = set_for(addr);
	char cmd[256];

	SMIG_ENSURE(set != NULL, SMIG_EINVAL);
	if (w->bans == NULL)
		return 0;
	snprintf(cmd, sizeof(cmd), "delete element inet smig %s { %s }", set, addr);
	return run(w->bans->ctx, cmd);
}
