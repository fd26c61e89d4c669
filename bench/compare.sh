#!/usr/bin/env bash
# Side-by-side rolling releases on one farm, tools interleaved (A B A B …), hosts reset
# between runs, every run verified. Prints median/min/max wall time per tool.
#
#   bench/compare.sh [HOSTS] [RUNS]        (default 8 hosts, 3 runs; as root)
#
# Tools so far: `deploy` (default settings) and the bash + ControlMaster limit
# (bench/tools/bash-deploy.sh). The workload: a ~20 MB app of ~2,000 files (half text, half
# incompressible), a fresh commit each run; upload + unpack + shared links on all hosts, one
# migration, host by host drain → switch → clear the cache folder → health → undrain, one ban.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-8} RUNS=${2:-3}
DIR=$(mktemp -d /tmp/deploy-compare.XXXXXX)
chmod 755 "$DIR"   # varnishd reads its VCL as its own user
FARM=$DIR/farm
trap 'tests/farm/farm.sh down "$FARM" >/dev/null 2>&1; rm -rf "$DIR"' EXIT
cargo build --release --quiet
DEPLOY=$PWD/target/release/deploy
tests/farm/farm.sh up "$FARM" "$HOSTS" >/dev/null
. "$FARM/farm.env"
REPO=$FARM/shop

# The bench workload: no app restart in the activate hook, only the cache folder cleared.
sed -i 's|^activate = .*|activate = ["rm -rf public/cache/*"]|; s|^prepare = .*|prepare = []|' "$FARM/Deploy.toml"
python3 - "$REPO" <<'PY'
import os, random, sys
repo = sys.argv[1]
rnd = random.Random(42)
for i in range(2000):
    d = os.path.join(repo, "src", f"mod{i % 40:02}")
    os.makedirs(d, exist_ok=True)
    if i % 2 == 0:
        body = "".join(f"<?php // line {l} of file {i}: template text that repeats\n" for l in range(200)).encode()
    else:
        body = rnd.randbytes(10_000)
    open(os.path.join(d, f"f{i}.{'php' if i % 2 == 0 else 'bin'}"), "wb").write(body)
PY
git -C "$REPO" add -A && git -C "$REPO" -c user.name=b -c user.email=b@localhost commit -qm "20 MB app"
export DEPLOY_CACHE_DIR=$DIR/cache
"$DEPLOY" -c "$FARM/Deploy.toml" farm --output plain 2>/dev/null   # a first release to roll from
base=$(readlink "$FARM/hosts/web1/www/shop/current")

reset_hosts() { # every host back on the base release, nothing else
  for h in $FARM_APP_HOSTS; do
    local root=$FARM/hosts/$h/www/shop
    find "$root/releases" -mindepth 1 -maxdepth 1 ! -name "${base#releases/}" -exec rm -rf {} +
    ln -sfn "$base" "$root/current"
    rm -rf "$root/.deploy/lock" "$root/.deploy/journal.json"
  done
}

verify() { # every host serves $1
  for a in $FARM_APP_ADDRS; do
    curl -s -D - -o /dev/null "http://$a:8080/cart" | grep -qi "x-release: .*$1" || { echo "verify: $a does not serve $1" >&2; return 1; }
  done
}

declare -A times
for ((r = 1; r <= RUNS; r++)); do
  for tool in deploy bash; do
    reset_hosts
    echo "run $r $tool" > "$REPO/public/run.txt"
    git -C "$REPO" add -A && git -C "$REPO" -c user.name=b -c user.email=b@localhost commit -qm "run $r $tool"
    start=$(date +%s.%N)
    case $tool in
      deploy) id=$("$DEPLOY" -c "$FARM/Deploy.toml" farm --output json | python3 -c 'import json,sys; print([json.loads(l)["release"] for l in sys.stdin if "deploy_started" in l][0])') ;;
      bash) id=$(bench/tools/bash-deploy.sh "$FARM" "$REPO") ;;
    esac
    end=$(date +%s.%N)
    verify "$id"
    times[$tool]+="$(echo "$end - $start" | bc) "
  done
done

echo "rolling release of a ~20 MB, 2,000-file app to $HOSTS hosts behind Varnish, $RUNS runs each (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-8s %8s %8s %8s\n' tool median min max
for tool in deploy bash; do
  sorted=$(tr ' ' '\n' <<< "${times[$tool]}" | grep . | sort -n)
  n=$(wc -l <<< "$sorted")
  printf '%-8s %7.2fs %7.2fs %7.2fs\n' "$tool" "$(sed -n "$(((n + 1) / 2))p" <<< "$sorted")" "$(head -1 <<< "$sorted")" "$(tail -1 <<< "$sorted")"
done
