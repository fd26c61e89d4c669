#!/usr/bin/env bash
# The real stacks side by side: a 4-host rolling release of the Symfony app (Apache with
# mod_php, then nginx with php-fpm) and of the Django app (Gunicorn), each behind Varnish,
# under load, with the built-in recipe's activate step (graceful reload, then wait for the
# old workers to exit).
#
#   bench/stacks.sh [STACK...]       (default: symfony symfony-fpm django; as root)
#
# For each stack: a farm of HOSTS (default 4) app hosts, a first deploy (cold: migrations,
# cache warm-up), then RUNS (default 3) releases that change the base template and the code,
# each while 4 clients send GET / through Varnish with a session cookie (so every request
# reaches an app host). Prints per release: wall time, the roll, how long each host was out
# of the balancer (drain to undrain) and its activate step, requests served and failed.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
STACKS=${*:-symfony symfony-fpm django} RUNS=${RUNS:-3} HOSTS=${HOSTS:-4}
build_deploy
DIR=$(bench_dir deploy-stacks)
trap '[ -f "$DIR/farm/farm.env" ] && tests/farm/farm.sh down "$DIR/farm" >/dev/null 2>&1; rm -rf "$DIR"' EXIT

report() { # events.json wall ok failed
  python3 - "$@" <<'PY'
import datetime, json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert ev[-1]["event"] == "finished" and ev[-1]["exit_code"] == 0, ev[-1]
t = lambda x: datetime.datetime.fromisoformat(x["ts"].replace("Z", "+00:00")).timestamp()
find = lambda name, host: next(x for x in ev if x["event"] == name and x.get("host") == host)
hosts = [x["host"] for x in ev if x["event"] == "host_drained"]
drained = [t(find("host_undrained", h)) - t(find("host_drained", h)) for h in hosts]
activate = [find("host_activated", h)["seconds"] for h in hosts]
start = {x["phase"]: t(x) for x in ev if x["event"] == "phase_started"}
end = {x["phase"]: t(x) for x in ev if x["event"] == "phase_finished"}
print(f"{float(sys.argv[2]):7.2f} {end['roll'] - start['roll']:7.2f} "
      f"{min(drained):5.2f}–{max(drained):<5.2f} {min(activate):5.2f}–{max(activate):<5.2f} {sys.argv[3]:>8} {sys.argv[4]:>6}")
PY
}

printf '%-12s %-6s %7s %7s %-11s %-11s %8s %6s\n' stack run wall roll 'drained s' 'activate s' requests failed
for stack in $STACKS; do
  [ -f "$DIR/farm/farm.env" ] && tests/farm/farm.sh down "$DIR/farm" >/dev/null 2>&1
  rm -rf "$DIR/farm" "$DIR/cache"
  tests/farm/farm.sh up "$DIR/farm" "$HOSTS" "$stack" >/dev/null
  . "$DIR/farm/farm.env"
  export DEPLOY_CACHE_DIR=$DIR/cache
  case $stack in django) template=templates/base.html cookie=sessionid code=depot/release.py ;;
    *) template=templates/base.html.twig cookie=PHPSESSID code=src/Release.php ;; esac
  s=$(date +%s.%N)
  "$DEPLOY" -c "$FARM_REPO/Deploy.toml" farm --output json > "$DIR/ev.json"
  e=$(date +%s.%N)
  printf '%-12s %-6s ' "$stack" first
  report "$DIR/ev.json" "$(echo "$e - $s" | bc)" - -
  for run in $(seq 2 $((RUNS + 1))); do
    sed -i "s|edition [0-9]*|edition $run|" "$FARM_REPO/$template"
    sed -i "s|code-[0-9]*|code-$run|" "$FARM_REPO/$code"
    bench_commit "$FARM_REPO" "edition $run"
    rm -f "$DIR/stop"
    bench_load "$FARM_VARNISH" "$cookie" "$DIR/stop" > "$DIR/load" &
    lp=$!
    sleep 1
    s=$(date +%s.%N)
    "$DEPLOY" -c "$FARM_REPO/Deploy.toml" farm --output json > "$DIR/ev.json"
    e=$(date +%s.%N)
    sleep 1
    touch "$DIR/stop"
    wait "$lp"
    read -r ok failed < "$DIR/load"
    printf '%-12s %-6s ' "$stack" "$run"
    report "$DIR/ev.json" "$(echo "$e - $s" | bc)" "$ok" "$failed"
    for url in $FARM_APP_URLS; do
      curl -s "$url/" | grep -q "edition $run" || { echo "stacks: $url does not serve edition $run" >&2; exit 1; }
    done
  done
done
