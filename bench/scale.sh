#!/usr/bin/env bash
# How a rolling release grows with the number of hosts: deploy's own costs (CPU, memory,
# file descriptors, ssh processes, bytes sent), with and without an artifact store.
#
#   bench/scale.sh [HOSTS...]        (default: 8 16 32 64; as root; up to 256)
#   RUNS=1 bench/scale.sh 64 128 256
#
# For each host count: a farm of that many hosts behind Varnish (probing every
# FARM_PROBE_INTERVAL, default here 250ms), the bench app of bench/compare.sh (~20 MB, 2,000
# files), activate = clear the cache folder, `[rolling] batch = "10%"`, `keep_releases = 1`;
# a first release; then
# one cold release (every host gets the whole tarball over ssh), RUNS (default 2) warm ones
# (1% of the files changed: deltas over ssh), then a cold and a warm release through an
# artifact store (`s-cold`, `s-warm`: s3s-fs on the farm's address; the deploying machine
# puts each tarball there once, hosts fetch it). Each run is checked: exit 0, every host on the new release, every backend
# healthy in Varnish.
#
# Columns: wall time; prepare (start → migration) and roll phases; deploy's own CPU seconds
# per host, and its ssh master processes' per host; deploy's own peak RSS (VmHWM, read from
# /proc: not its children); the most file descriptors it held; how many ssh masters it ran
# and their summed RSS; bytes the deploying machine sent (acked on its ssh masters' TCP
# connections, read with `ss`, plus what it PUT in the store). The farm's own memory (PSS of its processes) is printed per
# host count.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
COUNTS=${*:-8 16 32 64} RUNS=${RUNS:-2}
export FARM_PROBE_INTERVAL=${FARM_PROBE_INTERVAL:-250ms}
command -v s3s-fs >/dev/null || PATH=$PATH:$HOME/.cargo/bin
command -v s3s-fs >/dev/null || { echo "scale: s3s-fs is missing (scripts/install-deps installs it)" >&2; exit 1; }
build_deploy
DIR=$(bench_dir deploy-scale)
S3=
stop_s3() {
  if [ -n "$S3" ]; then kill "$S3" 2>/dev/null || true; wait "$S3" 2>/dev/null || true; fi
  S3=
}
trap 'stop_s3; [ -f "$DIR/farm/farm.env" ] && tests/farm/farm.sh down "$DIR/farm" >/dev/null 2>&1; rm -rf "$DIR"' EXIT

one() { # config mode → one line of the table (fails unless the run succeeded everywhere)
  local s e
  s=$(date +%s.%N)
  AWS_ACCESS_KEY_ID=scale AWS_SECRET_ACCESS_KEY=scale-secret-key \
    python3 bench/tools/sample.py "$DIR/sample.json" "$DEPLOY" -c "$1" farm --output json > "$DIR/ev.json"
  e=$(date +%s.%N)
  varnishadm -T "$FARM_LB:6082" -S "$DIR/farm/varnish-secret" backend.list > "$DIR/backends" 2>&1
  python3 - "$s" "$e" "$DIR/ev.json" "$DIR/sample.json" "$DIR/farm/hosts" "$DIR/backends" "$2" <<'PY'
import datetime, json, os, sys
s, e = float(sys.argv[1]), float(sys.argv[2])
ev = [json.loads(l) for l in open(sys.argv[3]) if l.startswith("{")]
sample = json.load(open(sys.argv[4]))
hosts_dir, backends, mode = sys.argv[5], open(sys.argv[6]).read(), sys.argv[7]
t = lambda x: datetime.datetime.fromisoformat(x["ts"].replace("Z", "+00:00")).timestamp()
start = {x["phase"]: t(x) for x in ev if x["event"] == "phase_started"}
end = {x["phase"]: t(x) for x in ev if x["event"] == "phase_finished"}
assert ev[-1]["event"] == "finished" and ev[-1]["exit_code"] == 0, ev[-1]
release = next(x["release"] for x in ev if x["event"] == "deploy_started")
apps = sorted(h for h in os.listdir(hosts_dir) if h.startswith("web"))
wrong = [h for h in apps if os.readlink(f"{hosts_dir}/{h}/www/shop/current") != f"releases/{release}"]
assert not wrong, f"not on {release}: {wrong}"
healthy = sum(1 for l in backends.splitlines() if ".web" in l and "healthy" in l)
assert healthy == len(apps), f"{healthy} of {len(apps)} backends healthy:\n{backends}"
sent = [x for x in ev if x["event"] == "sent"]
assert len(sent) == len(apps), f"{len(sent)} sent events for {len(apps)} hosts"
stored = sum(x["bytes"] for x in ev if x["event"] == "stored" and x["uploaded"])
n, own = len(apps), sample["own"]
out = sample["tcp_sent"] + stored
print(f"{n:6} {mode:>6} {e - s:7.2f}s {start['migrate'] - s:7.2f}s {end['roll'] - start['roll']:7.2f}s"
      f" {own['cpu_s'] / n * 1000:7.1f}ms {sample['ssh_cpu_s'] / n * 1000:7.1f}ms {own['rss_kb'] / 1024:7.1f} MB"
      f" {own['fds']:5} {sample['ssh_processes']:5} {sample['ssh_rss_kb'] / 1024:7.1f} MB"
      f" {out / 1e6:8.1f} MB {out / n / 1e6:7.2f} MB")
PY
}

printf '%6s %6s %8s %8s %8s %9s %9s %10s %5s %5s %10s %11s %10s\n' hosts mode wall prepare roll \
  'cpu/host' 'ssh/host' 'peak RSS' fds ssh 'ssh RSS' sent sent/host
for n in $COUNTS; do
  stop_s3
  [ -f "$DIR/farm/farm.env" ] && tests/farm/farm.sh down "$DIR/farm" >/dev/null 2>&1
  rm -rf "$DIR/farm" "$DIR/cache"
  tests/farm/farm.sh up "$DIR/farm" "$n" >/dev/null
  . "$DIR/farm/farm.env"
  REPO=$DIR/farm/shop
  export DEPLOY_CACHE_DIR=$DIR/cache
  bench_app "$DIR/farm"
  # 10% of the hosts at a time; one old release kept (256 hosts × 20 MB × 4 releases would not
  # fit on tmpfs).
  sed -i 's/^batch = 1$/batch = "10%"/; s/^keep_releases = 3$/keep_releases = 1/' "$DIR/farm/Deploy.toml"
  grep -q '^batch = "10%"$' "$DIR/farm/Deploy.toml" && grep -q '^keep_releases = 1$' "$DIR/farm/Deploy.toml" \
    || { echo "scale: no batch or keep_releases in Deploy.toml" >&2; exit 1; }
  mkdir -p "$DIR/s3/releases"
  s3s-fs --host "127.$FARM_ID.0.250" --port 9000 --access-key scale --secret-key scale-secret-key "$DIR/s3" \
    > /dev/null 2>&1 &
  S3=$!
  { cat "$DIR/farm/Deploy.toml"; printf '\n[artifact]\nstore = "s3://releases/scale"\nendpoint = "http://127.%s.0.250:9000"\n' "$FARM_ID"; } \
    > "$DIR/farm/Deploy-store.toml"
  one "$DIR/farm/Deploy.toml" first > /dev/null # a first release, so the others roll from one that serves
  read -r mb procs < <(python3 bench/tools/farm_memory.py "$DIR/farm")
  for ((r = 0; r <= RUNS + 2; r++)); do
    mode=warm config=$DIR/farm/Deploy.toml
    [ $r -gt "$RUNS" ] && config=$DIR/farm/Deploy-store.toml mode=s-warm
    # Cold: every host's current release unknown (no manifest), so each gets the whole
    # tarball: over ssh first, then through the store.
    if [ $r = 0 ] || [ $r = $((RUNS + 1)) ]; then
      mode=cold
      [ $r -gt 0 ] && mode=s-cold
      rm -f "$DIR"/farm/hosts/*/www/shop/.deploy/manifests/*
    fi
    change_1pct "$REPO" "run $r"
    bench_commit "$REPO" "run $r"
    sleep 1 # release ids have one-second resolution
    one "$config" "$mode"
  done
  echo "       farm of $n hosts: $mb MB in $procs processes ($(echo "$mb / ($n + 1)" | bc) MB per host, balancer included)"
done
echo "machine: $(nproc) cores, load average after: $(cut -d' ' -f1-3 /proc/loadavg); every host shares these cores"
