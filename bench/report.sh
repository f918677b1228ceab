#!/usr/bin/env bash
# report.sh DIR: turns make bench's DIR/results.jsonl and DIR/relay.json into
# DIR/report.md (medians per case and variant, the ratios smig/plain and
# smig/tls, the targets met or missed) and DIR/throughput.png (throughput
# over time of each variant's median run, one panel per case).
set -uo pipefail
dir=$1
res=$dir/results.jsonl
[ -s "$res" ] || { echo "report: no results in $res" >&2; exit 1; }

# per case and variant: medians over the runs that completed with the guest intact
summary=$(jq -s '
	def median: sort | if length == 0 then null
		elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def r1: if . == null then null else (. * 10 | round) / 10 end;
	def r2: if . == null then null else (. * 100 | round) / 100 end;
	group_by(.case) | map({key: .[0].case, value: (group_by(.variant) | map({key: .[0].variant,
		value: (map(select(.status == "completed" and .guest_ok)) as $ok | {
			runs: length, ok: ($ok | length),
			total_ms: ($ok | map(.total_ms) | median | r1),
			downtime_ms: ($ok | map(.downtime_ms) | median | r1),
			setup_ms: ($ok | map(.setup_ms) | median | r1),
			handshake_ms: ($ok | map(.handshake_ms // empty) | median | r1),
			mbps: ($ok | map(.stream_mbps) | median | r1),
			qemu_cpu_s: ($ok | map(.qemu_cpu_s) | median | r2),
			qemu_src_cpu_s: ($ok | map(.qemu_src_cpu_s // 0) | median | r2),
			qemu_dst_cpu_s: ($ok | map(.qemu_dst_cpu_s // 0) | median | r2),
			smigd_cpu_s: ($ok | map(.smigd_cpu_s) | median | r2),
			smigd_src_cpu_s: ($ok | map(.smigd_src_cpu_s // 0) | median | r2),
			smigd_dst_cpu_s: ($ok | map(.smigd_dst_cpu_s // 0) | median | r2),
			smigd_peak_rss_mib: ($ok | map(.smigd_peak_rss_mib // empty) | max),
			smigd_cpu_s_per_gib: ($ok | map(select(.bytes > 0) | .smigd_cpu_s / (.bytes / 1073741824)) | median | r2),
			median_run: ($ok | sort_by(.total_ms) | if length > 0 then .[(length - 1) / 2 | floor].run else null end)
		})}) | from_entries)}) | from_entries' "$res")
echo "$summary" >"$dir/summary.json"
relay=$(cat "$dir/relay.json" 2>/dev/null || echo '{}')

{
	echo "# smig benchmark"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), QEMU $(qemu-system-x86_64 --version | awk 'NR == 1 { print $4 }'), TCG single-threaded, loopback."
	echo "Medians of the runs that completed with the guest intact; ratios are smig / QEMU."
	echo
	echo "| case | variant | ok/runs | total ms | downtime ms | set-up ms | Mbit/s | QEMU CPU s (source + destination) | smigd CPU s (source + destination) |"
	echo "|---|---|---|---|---|---|---|---|---|"
	jq -r 'to_entries[] | .key as $c | .value | to_entries[] |
		"| \($c) | \(.key) | \(.value.ok)/\(.value.runs) | \(.value.total_ms) | \(.value.downtime_ms) | \(.value.setup_ms)\(if .value.handshake_ms then " (\(.value.handshake_ms) before QEMU)" else "" end) | \(.value.mbps) | \(.value.qemu_cpu_s) (\(.value.qemu_src_cpu_s) + \(.value.qemu_dst_cpu_s)) | \(if .key | startswith("smig") then "\(.value.smigd_cpu_s) (\(.value.smigd_src_cpu_s) + \(.value.smigd_dst_cpu_s))" else "–" end) |"' <<<"$summary"
	echo
	echo "| case | total smig/plain | total smig/tls | downtime smig − plain ms | set-up smig/plain | throughput smig/plain | throughput smig/tls | CPU smig/tls |"
	echo "|---|---|---|---|---|---|---|---|"
	jq -r 'def q(a; b): if a == null or b == null or b == 0 then "–" else (a / b * 100 | round) / 100 end;
		to_entries[] | .key as $c | .value as $v |
		($v.smig.qemu_cpu_s + $v.smig.smigd_cpu_s) as $sc |
		"| \($c) | \(q($v.smig.total_ms; $v.plain.total_ms)) | \(q($v.smig.total_ms; $v.tls.total_ms)) | \(if $v.smig.downtime_ms and $v.plain.downtime_ms then ($v.smig.downtime_ms - $v.plain.downtime_ms | . * 10 | round / 10) else "–" end) | \(q($v.smig.setup_ms; $v.plain.setup_ms)) | \(q($v.smig.mbps; $v.plain.mbps)) | \(q($v.smig.mbps; $v.tls.mbps)) | \(q($sc; $v.tls.qemu_cpu_s)) |"' <<<"$summary"
	echo
	if jq -e '[.[] | keys[] | select(test("-mf"))] | length > 0' <<<"$summary" >/dev/null; then
		echo "Parallel channels (QEMU multifd, N channels beside the main stream):"
		echo
		echo "| case | N | total smig-mfN/plain-mfN | total smig-mfN/tls-mfN | downtime smig-mfN − plain-mfN ms | smig-mfN/smig (one stream) |"
		echo "|---|---|---|---|---|---|"
		jq -r 'def q(a; b): if a == null or b == null or b == 0 then "–" else (a / b * 100 | round) / 100 end;
			to_entries[] | .key as $c | .value as $v | $v | keys[] | select(startswith("smig-mf")) |
			ltrimstr("smig-mf") as $k |
			"| \($c) | \($k) | \(q($v["smig-mf" + $k].total_ms; $v["plain-mf" + $k].total_ms)) | \(q($v["smig-mf" + $k].total_ms; $v["tls-mf" + $k].total_ms)) | \(if $v["smig-mf" + $k].downtime_ms and $v["plain-mf" + $k].downtime_ms then ($v["smig-mf" + $k].downtime_ms - $v["plain-mf" + $k].downtime_ms | . * 10 | round / 10) else "–" end) | \(q($v["smig-mf" + $k].total_ms; $v.smig.total_ms)) |"' <<<"$summary"
		echo
	fi
	echo "smigd, during smig's runs: peak RSS (VmHWM of the wardens and workers, reset before each run) and CPU seconds (both hosts) per GiB moved:"
	echo
	echo "| case | variant | peak RSS MiB | CPU s per GiB |"
	echo "|---|---|---|---|"
	jq -r 'to_entries[] | .key as $c | .value | to_entries[] | select(.key | startswith("smig")) |
		"| \($c) | \(.key) | \(.value.smigd_peak_rss_mib) | \(.value.smigd_cpu_s_per_gib) |"' <<<"$summary"
	echo
	echo "Relay alone (no QEMU): $(jq -r '"\(.mbytes_per_s) MB/s through the channel (\(.cipher)); openssl speed -evp aes-256-gcm, 16 KiB blocks, one core: \(.openssl_aes_256_gcm_mbytes_per_s) MB/s; ratio \(.ratio // 0 | . * 100 | round) %. The same frames without TLS: \(.without_tls_mbytes_per_s) MB/s. CPU per side: sender \(.sender_cpu_s) s, receiver \(.receiver_cpu_s) s for \(.bytes / 1048576) MiB."' <<<"$relay")"
	echo
	echo "## Targets"
	echo
	echo "| target | measured | met |"
	echo "|---|---|---|"
	jq -r --argjson relay "$relay" '
		def yes(c): if c == null then "–" elif c then "yes" else "no" end;
		def ok(a; b): a != null and b != null;
		(to_entries[] | .key as $c | .value as $v |
			"| \($c): total ≤ 1.10 × plain | \($v.smig.total_ms) vs \($v.plain.total_ms) ms | \(yes(if ok($v.smig.total_ms; $v.plain.total_ms) then $v.smig.total_ms <= 1.10 * $v.plain.total_ms else null end)) |",
			"| \($c): faster than QEMU TLS | \($v.smig.total_ms) vs \($v.tls.total_ms) ms | \(yes(if ok($v.smig.total_ms; $v.tls.total_ms) then $v.smig.total_ms < $v.tls.total_ms else null end)) |",
			"| \($c): downtime ≤ plain + 5 ms | \($v.smig.downtime_ms) vs \($v.plain.downtime_ms) ms | \(yes(if ok($v.smig.downtime_ms; $v.plain.downtime_ms) then $v.smig.downtime_ms <= $v.plain.downtime_ms + 5 else null end)) |",
			"| \($c): set-up (connect + attestation + policy) ≤ 50 ms | \($v.smig.handshake_ms // $v.smig.setup_ms) ms | \(yes(($v.smig.handshake_ms // $v.smig.setup_ms) as $s | if $s then $s <= 50 else null end)) |",
			($v | keys[] | select(startswith("smig-mf")) | ltrimstr("smig-mf") as $k |
				$v["smig-mf" + $k] as $s | $v["plain-mf" + $k] as $p | $v["tls-mf" + $k] as $t |
				"| \($c): smig-mf\($k) ≤ 1.10 × plain-mf\($k) | \($s.total_ms) vs \($p.total_ms) ms | \(yes(if ok($s.total_ms; $p.total_ms) then $s.total_ms <= 1.10 * $p.total_ms else null end)) |",
				"| \($c): smig-mf\($k) faster than tls-mf\($k) | \($s.total_ms) vs \($t.total_ms) ms | \(yes(if ok($s.total_ms; $t.total_ms) then $s.total_ms < $t.total_ms else null end)) |"),
			($v | to_entries[] | select(.key | startswith("smig")) |
				"| \($c) \(.key): smigd peak RSS ≤ 64 MiB | \(.value.smigd_peak_rss_mib) MiB | \(yes(if .value.smigd_peak_rss_mib then .value.smigd_peak_rss_mib <= 64 else null end)) |")),
		(if .vtpm then "| vTPM guest downtime ≤ 50 ms | \(.vtpm.smig.downtime_ms) ms | \(yes(if .vtpm.smig.downtime_ms then .vtpm.smig.downtime_ms <= 50 else null end)) |" else empty end),
		"| relay ≥ 80 % of one core AES-256-GCM | \($relay.ratio // 0 | . * 100 | round) % | \(yes(if $relay.ratio then $relay.ratio >= 0.8 else null end)) |"' <<<"$summary"
	echo
	echo "![throughput over time](throughput.png)"
} >"$dir/report.md"

# the plot: throughput over time of each variant's median run
command -v gnuplot >/dev/null || { echo "report: gnuplot missing, no plot" >&2; exit 0; }
plot=""
ncases=$(jq 'length' <<<"$summary")
for c in $(jq -r 'keys[]' <<<"$summary"); do
	lines=""
	for v in $(jq -r --arg c "$c" '.[$c] | keys[]' <<<"$summary"); do
		n=$(jq -r --arg c "$c" --arg v "$v" '.[$c][$v].median_run // empty' <<<"$summary")
		f=$dir/samples-$v-$c-$n
		[ -n "$n" ] || continue
		# bytes sent, sampled every 100 ms, between the end of set-up (0 bytes)
		# and the end (all bytes): Mbit/s over each interval, drawn as steps
		jq -r --arg c "$c" --arg v "$v" --argjson n "$n" \
			'select(.case == $c and .variant == $v and .run == $n) |
			 "\(.setup_ms) 0 start", "\(.total_ms) \(.bytes) end"' "$res" >"$dir/plot-$v-$c.pts"
		{ head -1 "$dir/plot-$v-$c.pts"; cat "$f" 2>/dev/null; tail -1 "$dir/plot-$v-$c.pts"; } |
			awk 'NR == 1 { t = $1; b = $2; next }
				$1 - t >= 20 && $2 >= b { printf "%.3f %.1f\n", t / 1000, ($2 - b) * 8 / ($1 - t) / 1000
					last = sprintf("%.3f %.1f", $1 / 1000, ($2 - b) * 8 / ($1 - t) / 1000); t = $1; b = $2 }
				END { if (last != "") print last }' >"$dir/plot-$v-$c.dat"
		[ -s "$dir/plot-$v-$c.dat" ] || continue
		rm -f "$dir/plot-$v-$c.pts"
		lines="$lines${lines:+, }'$dir/plot-$v-$c.dat' using 1:2 with steps lw 2 title '$v'"
	done
	[ -n "$lines" ] && plot="${plot}set title '$c'; plot $lines
"
done
gnuplot <<GP
set terminal pngcairo size 900,$((300 * ncases)) font ',10'
set output '$dir/throughput.png'
set multiplot layout $ncases,1
set xlabel 'seconds since the migration was asked for'
set ylabel 'Mbit/s'
set grid
set key top right
set xrange [0:*]
set yrange [0:*]
$plot
unset multiplot
GP
