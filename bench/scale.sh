#!/usr/bin/env bash
# How a rolling release grows with the number of hosts, and the memory of the deploy process.
#
#   bench/scale.sh [HOSTS...]        (default: 8 16 32 64; as root)
#
# For each host count: a farm of that many hosts behind Varnish, the bench app of
# bench/compare.sh (~20 MB, 2,000 files), activate = clear the cache folder; a first release;
# then one cold release (every host gets the whole tarball) and RUNS (default 2) warm ones
# (20 files changed each time). Prints wall time, phases and deploy's peak RSS per host count; default settings
# (connections opened 16 at a time, uploads 8 hosts at a time, roll 1 host at a time).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
COUNTS=${*:-8 16 32 64} RUNS=${RUNS:-2}
build_deploy
DIR=$(bench_dir deploy-scale)
trap '[ -f "$DIR/farm/farm.env" ] && tests/farm/farm.sh down "$DIR/farm" >/dev/null 2>&1; rm -rf "$DIR"' EXIT

one() { # mode label → "wall prepare roll finish rss sent-kind"
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$DIR/rss" "$DEPLOY" -c "$DIR/farm/Deploy.toml" farm --output json > "$DIR/ev.json"
  e=$(date +%s.%N)
  python3 - "$s" "$e" "$DIR/ev.json" "$(cat "$DIR/rss")" <<'PY'
import datetime, json, sys
s, e, rss = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[4])
ev = [json.loads(l) for l in open(sys.argv[3]) if l.startswith("{")]
t = lambda x: datetime.datetime.fromisoformat(x["ts"].replace("Z", "+00:00")).timestamp()
start = {x["phase"]: t(x) for x in ev if x["event"] == "phase_started"}
end = {x["phase"]: t(x) for x in ev if x["event"] == "phase_finished"}
kinds = sorted({x["kind"] for x in ev if x["event"] == "sent"})
assert ev[-1]["event"] == "finished" and ev[-1]["exit_code"] == 0, ev[-1]
print(f"{e - s:.2f} {end['connect'] - start['connect']:.2f} {start['migrate'] - s:.2f} {end['roll'] - start['roll']:.2f} {e - end['roll']:.2f} {rss} {'/'.join(kinds)}")
PY
}

printf '%6s %5s %8s %8s %8s %8s %8s %9s %10s %s\n' hosts mode wall connect prepare roll finish roll/host 'peak RSS' sent
for n in $COUNTS; do
  [ -f "$DIR/farm/farm.env" ] && tests/farm/farm.sh down "$DIR/farm" >/dev/null 2>&1
  rm -rf "$DIR/farm" "$DIR/cache"
  tests/farm/farm.sh up "$DIR/farm" "$n" >/dev/null
  REPO=$DIR/farm/shop
  export DEPLOY_CACHE_DIR=$DIR/cache
  bench_app "$DIR/farm"
  one > /dev/null # a first release, so the others roll from one that serves
  for ((r = 0; r <= RUNS; r++)); do
    mode=warm
    # Cold: every host's current release unknown (no manifest), so each gets the whole tarball.
    [ $r = 0 ] && mode=cold && rm -f "$DIR"/farm/hosts/*/www/shop/.deploy/manifests/*
    change_1pct "$REPO" "run $r"
    bench_commit "$REPO" "run $r"
    sleep 1 # release ids have one-second resolution
    read -r wall conn prep roll fin rss kinds < <(one)
    printf '%6s %5s %7ss %7ss %7ss %7ss %7ss %7.0fms %7.1f MB %s\n' "$n" "$mode" "$wall" "$conn" "$prep" "$roll" "$fin" \
      "$(echo "$roll * 1000 / $n" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$kinds"
  done
done
echo "machine: $(nproc) cores, load average after: $(cut -d' ' -f1-3 /proc/loadavg); every host shares these cores"
