# tap.sh - minimal TAP output for shell tests. Source it, call plan N, then
# ok/check for each test; done_testing at the end.
_tap_n=0
_tap_failed=0

plan() { echo "1..$1"; }

# ok COND_STATUS DESCRIPTION: "ok" when the status is 0.
ok() {
	local status=$1
	shift
	_tap_n=$((_tap_n + 1))
	if [ "$status" -eq 0 ]; then
		echo "ok $_tap_n - $*"
	else
		echo "not ok $_tap_n - $*"
		_tap_failed=$((_tap_failed + 1))
	fi
}

# check DESCRIPTION CMD...: runs CMD and reports its status.
check() {
	local desc=$1
	shift
	"$@"
	ok $? "$desc"
}

diag() { sed "s/^/# /" <<<"$*"; }

done_testing() { [ "$_tap_failed" -eq 0 ]; }
