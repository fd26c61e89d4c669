#!/usr/bin/env bash
# A bad release caught by its canary, at the default [canary] settings (interval 10s,
# failures 2, soak 2m), behind Varnish and behind HAProxy: how long from the canary's switch
# to the verdict, and how many requests the bad release answered with errors meanwhile (the
# blast radius).
#
#   bench/canary.sh                  (as root; HOSTS app hosts, default 4)
#
# The shop's nginx answers 500 on every page but /health when the release has
# config/answer-500: it passes its health check and fails real traffic. 4 clients send
# GET / through the balancer with a cart cookie (so every request reaches an app host).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
HOSTS=${HOSTS:-4}
build_deploy
bench_farm deploy-canary "$HOSTS" shop
CONFIG=$DIR/farm/Deploy.toml
"$DEPLOY" -c "$CONFIG" farm --output json > "$DIR/ev.json"
printf '\n[stages.%s.rolling]\ncanary = 1\n' farm farm-haproxy >> "$CONFIG"

report() { # events.json stage ok failed
  python3 - "$@" <<'PY'
import datetime, json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
t = lambda x: datetime.datetime.fromisoformat(x["ts"].replace("Z", "+00:00")).timestamp()
end = ev[-1]
assert end["event"] == "finished" and end["exit_code"] == 1, end
switch = next(x for x in ev if x["event"] == "host_switched")
verdict = next(x for x in ev if x["event"] == "canary_verdict")
assert verdict["verdict"] == "fail", verdict
switched = {x["host"] for x in ev if x["event"] == "host_switched"}
assert switched == {switch["host"]}, f"only the canary was switched: {switched}"
samples = [x for x in ev if x["event"] == "canary_sample"]
ok, failed = int(sys.argv[3]), int(sys.argv[4])
print(f"{sys.argv[2]:<13} {t(verdict) - t(switch):8.1f} {len(samples):8} {verdict['requests']:>9} {verdict['errors']:>8} "
      f"{failed:>10} {ok + failed:>9} {100 * failed / max(ok + failed, 1):6.1f}%")
PY
}

printf '%-13s %8s %8s %9s %8s %10s %9s %7s\n' balancer 'verdict' samples 'canary rq' 'errors' 'failed rq' 'all rq' share
n=0
for stage in farm farm-haproxy; do
  n=$((n + 1))
  url=$FARM_VARNISH
  [ "$stage" = farm-haproxy ] && url=$FARM_HAPROXY
  mkdir -p "$FARM_REPO/config"
  echo broken > "$FARM_REPO/config/answer-500"
  echo "$n" > "$FARM_REPO/config/run"
  bench_commit "$FARM_REPO" "a release that fails real traffic ($n)"
  rm -f "$DIR/stop"
  bench_load "$url" cart "$DIR/stop" > "$DIR/load" &
  lp=$!
  sleep 1
  "$DEPLOY" -c "$CONFIG" "$stage" --output json > "$DIR/ev.json" 2> "$DIR/err" || true
  sleep 1
  touch "$DIR/stop"
  wait "$lp"
  read -r ok failed < "$DIR/load"
  report "$DIR/ev.json" "$stage" "$ok" "$failed"
done
echo "(verdict: seconds from the canary's switch to the canary_verdict; failed rq: errors the clients got, all from the canary; share: of every request during the deploy)"
