#!/usr/bin/env bash
# The audit log under load from local users: it rotates past audit.max_kib
# with the hash chain running on across files (smig audit verify follows
# it, online and offline, and names a missing file); smigd's own log
# (log.file) rotates too, both processes writing the new file; a flood of
# refused requests writes a count, not a record and an fsync each; one
# local user cannot take every control connection.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../harness/lib.sh"
. "$here/../harness/tap.sh"

dir=$(mktemp -d /tmp/smig-auditlog.XXXXXX)
holders=()
cleanup() {
	for p in "${holders[@]}"; do kill "$p" 2>/dev/null; done
	cluster_clean "$dir"
}
trap cleanup EXIT
cluster_make "$dir" 1 || { echo "Bail out! cluster_make"; exit 1; }
chmod 0755 "$dir" # nobody reaches the socket (group nogroup) through it
jq '.control.group = "nogroup" | .control.per_uid = 2 | .audit = {"max_kib": 16, "keep": 2} |
    .log.file = "smigd-h1.log" | .log.max_kib = 16 | .log.keep = 2' \
	"$dir/h1.json" >"$dir/h1.tmp" && mv "$dir/h1.tmp" "$dir/h1.json"
log=$dir/state-h1/audit.log
slog=$dir/smigd-h1.log

plan 11

smigd_start "$dir" h1
ok $? "h1 starts with audit.max_kib 16, audit.keep 2, control.per_uid 2"

# --- rotation ---------------------------------------------------------------------
printf '{"name": "r", "memory_mib": 32, %s}\n' "$(guest_boot smig-guest.elf x)" >"$dir/r.json"
for i in $(seq 1 140); do
	hsmig "$dir" h1 vm define "$dir/r.json" >/dev/null && hsmig "$dir" h1 vm undefine r >/dev/null ||
		break
done
[ -s "$log.1" ] && [ -s "$log.2" ] && [ ! -e "$log.3" ] && [ "$(head -1 "$log" | jq -r .action)" = audit.rotate ] &&
	[ "$(tail -1 "$log.1" | jq -r .action)" = audit.checkpoint ] &&
	[ "$(stat -c %s "$log.1")" -lt 20000 ] && [ "$(stat -c '%a %U' "$log.1")" = "640 root" ]
ok $? "past 16 KiB the log rotates: each file ends with a checkpoint, the next begins with audit.rotate; two kept ($(ls "$dir/state-h1" | grep -c '^audit.log'))"
r=$(hsmig "$dir" h1 --json audit verify)
jqe '.ok and .files == 3 and .first_seq > 1 and .head_checked and .damage == []' <<<"$r" >/dev/null
ok $? "smig audit verify follows the chain over the rotated files ($(jq -c '{files,first_seq,last_seq,records}' <<<"$r"))"
out=$("$SMIG" audit verify "$log" --cert "$dir/pki/h1.crt")
[ $? -eq 0 ] && grep -q "intact: .* in 3 files" <<<"$out" && grep -q "older files were rotated away" <<<"$out"
ok $? "offline: the file, its rotated files and its head verify against the host certificate: $(head -1 <<<"$out")"
n=$(hsmig "$dir" h1 --json audit show --last 0 | wc -l)
[ "$n" -gt "$(wc -l <"$log")" ] && [ "$n" -ge "$(cat "$log.2" "$log.1" "$log" | wc -l)" ]
ok $? "audit show --last 0 reads back through the rotated files ($n records)"
# The warden may rotate on its next look (every 2 s) right after the last
# request: until the worker has written the new file too, ask again.
both_write() {
	hsmig "$dir" h1 vm list >/dev/null
	pids=$(grep -o 'smigd\[[0-9]*\]' "$slog" | sort -u | wc -l)
	[ "$pids" -ge 2 ] && grep -q 'event=request cmd=' "$slog"
}
wait_for 10 both_write
[ -s "$slog.1" ] && [ -s "$slog.2" ] && [ ! -e "$slog.3" ] && [ "$pids" -ge 2 ] &&
	grep -q 'event=log_rotated' "$slog.1" && grep -q 'event=request cmd=' "$slog" &&
	[ "$(stat -c '%a %U' "$slog")" = "640 root" ] && [ "$(stat -c %s "$slog.1")" -lt 65536 ]
ok $? "smigd's own log (log.file) rotates past 16 KiB, two kept; warden and worker both write the new file ($pids processes)"
mkdir "$dir/copy" && cp "$log" "$log.head" "$log.2" "$dir/copy/"
out=$("$SMIG" audit verify "$dir/copy/audit.log" --cert "$dir/pki/h1.crt")
rc=$?
[ $rc -eq 1 ] && grep -qE "deleted +records [0-9]+\.\.[0-9]+ are missing \(before audit.log:1\)" <<<"$out"
ok $? "a rotated file taken out of the middle is found, named by where the gap is (exit $rc): $(grep deleted <<<"$out")"
mkdir "$dir/copy2" && cp "$log" "$log.head" "$log.1" "$dir/copy2/"
out=$("$SMIG" audit verify "$dir/copy2/audit.log" --cert "$dir/pki/h1.crt")
rc=$?
[ $rc -eq 1 ] && grep -q "its last rotation (seq [0-9]*) kept files from seq" <<<"$out"
ok $? "so is the oldest kept file taken away: the last audit.rotate says where the kept files begin (exit $rc)"

# --- a flood of refused requests -----------------------------------------------------
as_nobody() { setpriv --reuid=nobody --regid=nogroup --init-groups "$SMIG" --socket "$dir/h1.sock" "$@"; }
before=$(cat "$log"* | wc -l)
t0=$(date +%s%N)
for i in $(seq 1 60); do as_nobody vm stop r >/dev/null 2>&1; done
t1=$(date +%s%N)
denials() { hsmig "$dir" h1 --json audit show --last 0 | jq -s 'map(select(.actor == "user:nobody(65534)" and .action == "vm.stop"))'; }
d=$(denials)
[ "$(jq length <<<"$d")" -eq 1 ] && [ $(($(cat "$log"* | wc -l) - before)) -le 4 ]
ok $? "60 refused requests from one user: one record so far, not 60 ($(jq length <<<"$d") records, $(((t1 - t0) / 1000000)) ms)"
counted() { denials | jq -e 'map(select(.detail | test("^59 more like it"))) | length == 1' >/dev/null; }
wait_for 20 counted
ok $? "when its 10 s window ends, one record counts the other 59"

# --- control connections per uid ----------------------------------------------------------
for i in 1 2; do
	setpriv --reuid=nobody --regid=nogroup --init-groups socat -u "UNIX-CONNECT:$dir/h1.sock" - </dev/null >/dev/null 2>&1 &
	holders+=($!)
done
sleep 1
out=$(as_nobody vm list 2>&1)
rc=$?
[ $rc -ne 0 ] && grep -q "uid 65534 holds 2 control connections (control.per_uid 2)" <<<"$out" &&
	hsmig "$dir" h1 vm list >/dev/null && wait_for 3 grep -q 'event=control_refused uid=65534' "$slog"
ok $? "a third connection of nobody's is refused with the reason; root is still served: $out"

done_testing
