# etcd.sh - a real etcd cluster (Debian's etcd-server, unpacked by
# scripts/install-deps.sh) for the fleet store's tests, sourced by
# lib.sh's users. Member K runs in the network namespace NS_PREFIX-hK at
# ADDR_PREFIX.K (clients on port 2379, peers on 2380), TLS everywhere:
# members and clients present certificates of the cluster's CA (DIR/pki),
# and etcd takes no client without one.
#
#   etcd_up DIR N NS_PREFIX ADDR_PREFIX   starts members e1..eN, waits for a leader
#   etcd_endpoints DIR                    https://ADDR:2379,... of every member
#   etcd_kill DIR K / etcd_start DIR K    kill -9 member K / start it again
#   etcd_leader DIR                       the number K of the member that leads now
#   etcd_down DIR                         stops every member
#   etcdtry DIR HOST ARGS...              smig-etcd-try from HOST's namespace, with its certificate
ETCD_DIR=${SMIG_ETCD_DIR:-/var/cache/smig/etcd}
ETCD=$ETCD_DIR/etcd
ETCDCTL=$ETCD_DIR/etcdctl

etcd_endpoints() {
	local dir=$1 k eps=
	for k in $(cat "$dir/etcd.members"); do
		eps=${eps:+$eps,}https://$(cat "$dir/etcd-e$k.addr"):2379
	done
	echo "$eps"
}

# etcd_start DIR K: member K, into the cluster as it was made (a data
# directory it has already joins as before)
etcd_start() {
	local dir=$1 k=$2 addr ns initial= j
	addr=$(cat "$dir/etcd-e$k.addr")
	ns=$(cat "$dir/etcd-e$k.ns")
	for j in $(cat "$dir/etcd.members"); do
		initial=${initial:+$initial,}e$j=https://$(cat "$dir/etcd-e$j.addr"):2380
	done
	ip netns exec "$ns" "$ETCD" --name "e$k" --data-dir "$dir/etcd-e$k" \
		--listen-client-urls "https://$addr:2379" --advertise-client-urls "https://$addr:2379" \
		--listen-peer-urls "https://$addr:2380" --initial-advertise-peer-urls "https://$addr:2380" \
		--initial-cluster "$initial" --initial-cluster-state new \
		--initial-cluster-token "$(basename "$dir")" \
		--cert-file "$dir/pki/etcd-e$k.crt" --key-file "$dir/pki/etcd-e$k.key" \
		--client-cert-auth --trusted-ca-file "$dir/pki/ca.crt" \
		--peer-cert-file "$dir/pki/etcd-e$k.crt" --peer-key-file "$dir/pki/etcd-e$k.key" \
		--peer-client-cert-auth --peer-trusted-ca-file "$dir/pki/ca.crt" \
		--heartbeat-interval 100 --election-timeout 1000 \
		--logger zap --log-outputs "$dir/etcd-e$k.log" >>"$dir/etcd-e$k.out" 2>&1 &
	echo $! >"$dir/etcd-e$k.pid"
}

etcd_kill() {
	local pid
	pid=$(cat "$1/etcd-e$2.pid" 2>/dev/null) && kill -KILL "$pid" 2>/dev/null
	[ -n "${pid:-}" ] && wait "$pid" 2>/dev/null
	return 0
}

# etcdctl_as DIR ARGS...: etcdctl with the CA and h1's certificate, from h1's namespace
etcdctl_as() {
	local dir=$1
	shift
	ip netns exec "$(cat "$dir/etcd-e1.ns")" "$ETCDCTL" --endpoints "$(etcd_endpoints "$dir")" \
		--cacert "$dir/pki/ca.crt" --cert "$dir/pki/h1.crt" --key "$dir/pki/h1.key" \
		--dial-timeout 2s --command-timeout 3s "$@"
}

etcd_leader() {
	local dir=$1 k
	for k in $(cat "$dir/etcd.members"); do
		ip netns exec "$(cat "$dir/etcd-e$k.ns")" "$ETCDCTL" \
			--endpoints "https://$(cat "$dir/etcd-e$k.addr"):2379" --cacert "$dir/pki/ca.crt" \
			--cert "$dir/pki/h1.crt" --key "$dir/pki/h1.key" --dial-timeout 1s \
			endpoint status -w json 2>/dev/null |
			jq -e '.[0].Status | .leader == .header.member_id' >/dev/null && { echo "$k"; return 0; }
	done
	return 1
}

etcd_up() {
	local dir=$1 n=$2 nsp=$3 ap=$4 k
	[ -x "$ETCD" ] || { echo "etcd_up: no $ETCD (scripts/install-deps.sh fetches it)" >&2; return 1; }
	: >"$dir/etcd.members"
	for k in $(seq 1 "$n"); do
		echo "$ap$k" >"$dir/etcd-e$k.addr"
		echo "$nsp-h$k" >"$dir/etcd-e$k.ns"
		echo "$k" >>"$dir/etcd.members"
		[ -f "$dir/pki/etcd-e$k.crt" ] ||
			"$SMIG" pki issue "$dir/pki" "etcd-e$k" --ip "$ap$k" >/dev/null || return 1
	done
	for k in $(seq 1 "$n"); do
		etcd_start "$dir" "$k"
	done
	wait_for 30 etcd_leader "$dir" >/dev/null ||
		{ echo "etcd_up: no leader after 30 s (see $dir/etcd-e*.log)" >&2; return 1; }
}

etcd_down() {
	local k
	[ -f "$1/etcd.members" ] || return 0
	for k in $(cat "$1/etcd.members"); do
		etcd_kill "$1" "$k"
	done
}

etcdtry() {
	local dir=$1 host=$2
	shift 2
	ip netns exec "$(sed 's/-h1$//' "$dir/etcd-e1.ns")-$host" "$SMIG_BUILD/tests/harness/smig-etcd-try" \
		--endpoints "$(etcd_endpoints "$dir")" --ca "$dir/pki/ca.crt" \
		--cert "$dir/pki/$host.crt" --key "$dir/pki/$host.key" "$@"
}
