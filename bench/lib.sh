# Shared by bench/compare.sh and bench/scale.sh (sourced, from the repository's top folder).

# A fresh work folder: on tmpfs by default, since the farm's hosts share one disk here and its
# write-back stalls (not the tools) would decide the figures; a container's 64 MB /dev/shm is
# too small, so then /tmp. BENCH_DIR=/tmp measures on disk. $1: a name for the folder.
bench_dir() {
  local shm default=/tmp dir
  shm=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
  [ "${shm:-0}" -gt 2000000 ] && default=/dev/shm
  dir=$(mktemp -d "${BENCH_DIR:-$default}/$1.XXXXXX")
  chmod 755 "$dir" # varnishd reads its VCL as its own user
  echo "$dir"
}

# Builds deploy and sets DEPLOY. DEPLOY_PROFILE=debug: the test build (the CI smoke run);
# figures want the release build.
build_deploy() {
  # DEPLOY_BIN: measure that binary instead (an older build, side by side).
  if [ -n "${DEPLOY_BIN:-}" ]; then DEPLOY=$DEPLOY_BIN; return 0; fi
  local profile=${DEPLOY_PROFILE:-release}
  if [ "$profile" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
  DEPLOY=${CARGO_TARGET_DIR:-$PWD/target}/$profile/deploy
}

# The workload in a farm's example app: ~20 MB in 2,000 files, half text, half incompressible,
# committed; the activate hook only clears the cache folder, no prepare hook. $1: farm folder.
bench_app() {
  sed -i 's|^activate = .*|activate = ["rm -rf public/cache/*"]|; s|^prepare = .*|prepare = []|' "$1/Deploy.toml"
  python3 - "$1/shop" <<'PY'
import os, random, sys
rnd = random.Random(42)
for i in range(2000):
    d = os.path.join(sys.argv[1], "src", f"mod{i % 40:02}")
    os.makedirs(d, exist_ok=True)
    if i % 2 == 0:
        body = "".join(f"<?php // line {l} of file {i}: template text that repeats\n" for l in range(200)).encode()
    else:
        body = rnd.randbytes(10_000)
    open(os.path.join(d, f"f{i}.{'php' if i % 2 == 0 else 'bin'}"), "wb").write(body)
PY
  bench_commit "$1/shop" "20 MB app"
}

# Rewrites 20 of the 2,000 files (1%) with $2 in them. $1: the app's repository.
change_1pct() {
  local i
  for i in $(seq 0 100 1900); do
    printf '<?php // %s\n' "$2" > "$1/src/mod$(printf %02d $((i % 40)))/f$i.php"
  done
}

# Commits everything in repository $1 with message $2.
bench_commit() {
  git -C "$1" add -A && git -C "$1" -c user.name=b -c user.email=b@localhost commit -qm "$2"
}

# The same build for every tool in bench/compare.sh: the commit's tree exported, the app's
# build run in it as deploy runs it (`sh bin/build`, the farm's `[build] commands`, with
# DEPLOY_STAGE and DEPLOY_COMMIT), packed. $1: repository, $2: the .tar.gz to write.
bench_tarball() {
  local tmp commit
  commit=$(git -C "$1" rev-parse HEAD)
  tmp=$(mktemp -d /tmp/bench-build.XXXXXX)
  chmod 755 "$tmp" # the release folder takes its mode: the web server must enter it
  if git -C "$1" archive --format=tar HEAD | tar -x -C "$tmp" \
    && (cd "$tmp" && DEPLOY_STAGE=farm DEPLOY_COMMIT=$commit sh bin/build) \
    && tar -C "$tmp" -cf - . | gzip -1 > "$2"; then
    rm -rf "$tmp"
  else
    rm -rf "$tmp"
    echo "bench_tarball: the build of $commit failed" >&2
    return 1
  fi
}

# What every run of every tool must leave (farm.env sourced): each app host answers 200 on
# /cart with release $1 and 200 on / with the page the build made for commit $2; every
# backend is in service in Varnish; and Varnish's cached / is release $1's (the ban ran: run
# bench_prime before the tool). Prints what is wrong and fails.
bench_verify() {
  local a code body head bad=0 listed healthy n
  for a in $FARM_APP_ADDRS; do
    head=$(curl -s -D - -o /dev/null -w '%{http_code}' "http://$a:8080/cart")
    code=${head##*$'\n'}
    [ "$code" = 200 ] || { echo "verify: $a answers $code on /cart" >&2; bad=1; }
    grep -qi "^x-release: .*$1" <<< "$head" || { echo "verify: $a does not serve release $1 on /cart" >&2; bad=1; }
    body=$(curl -s -w '\n%{http_code}' "http://$a:8080/")
    [ "${body##*$'\n'}" = 200 ] || { echo "verify: $a answers ${body##*$'\n'} on /" >&2; bad=1; }
    grep -q "$2" <<< "$body" || { echo "verify: $a's / is not the page built for $2" >&2; bad=1; }
  done
  listed=$(varnishadm -T "$FARM_LB:6082" -S "$FARM/varnish-secret" backend.list 2>&1)
  n=$(wc -w <<< "$FARM_APP_ADDRS")
  healthy=$(awk 'tolower($0) ~ /\.web[0-9]+ / && tolower($0) ~ /healthy/ && tolower($0) !~ /sick/' <<< "$listed" | wc -l)
  [ "$healthy" = "$n" ] || { echo "verify: $healthy of $n backends in service:" >&2; echo "$listed" >&2; bad=1; }
  head=$(curl -s -D - -o /dev/null "$FARM_VARNISH/")
  grep -qi "^x-release: .*$1" <<< "$head" || { echo "verify: Varnish still serves an old / (no ban?):" >&2; echo "$head" >&2; bad=1; }
  return $bad
}

# Puts / in Varnish's cache (two requests: the second is a hit), so bench_verify can tell
# whether the tool's ban cleared it.
bench_prime() {
  curl -s -o /dev/null "$FARM_VARNISH/"
  curl -s -D - -o /dev/null "$FARM_VARNISH/" | grep -qi '^x-cache: hit' || { echo "prime: / is not cached" >&2; return 1; }
}

# Sends GET / to base URL $1 from $4 threads (default 4), each with cookie `$2=benchN` (a
# session: every request reaches an app host), pausing $5 seconds after each answer (default
# none), until file $3 exists; prints "ok failed" (failed: any status but 200, or a
# connection error). A connection an answer closes is opened again.
bench_load() {
  python3 - "$1" "$2" "$3" "${4:-4}" "${5:-0}" <<'PY'
import http.client, os, sys, threading, time, urllib.parse
url, cookie, stop = urllib.parse.urlparse(sys.argv[1]), sys.argv[2], sys.argv[3]
pause = float(sys.argv[5])
counts = [[0, 0] for _ in range(int(sys.argv[4]))]
def client(n):
    conn = None
    while not os.path.exists(stop):
        try:
            conn = conn or http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            conn.request("GET", "/", headers={"Cookie": f"{cookie}=bench{n}"})
            answer = conn.getresponse(); answer.read()
            counts[n][0 if answer.status == 200 else 1] += 1
            if answer.getheader("Connection", "").lower() == "close": conn = None
            if pause: time.sleep(pause)
        except Exception:
            counts[n][1] += 1; conn = None
threads = [threading.Thread(target=client, args=(n,)) for n in range(len(counts))]
for t in threads: t.start()
for t in threads: t.join()
print(sum(c[0] for c in counts), sum(c[1] for c in counts))
PY
}

# A farm of $2 hosts of stack $3 in a fresh work folder named $1, torn down on exit: sets
# DIR, sources its farm.env, and gives deploy its own cache there.
bench_farm() {
  DIR=$(bench_dir "$1")
  trap '[ -f "$DIR/farm/farm.env" ] && tests/farm/farm.sh down "$DIR/farm" >/dev/null 2>&1; rm -rf "$DIR"' EXIT
  tests/farm/farm.sh up "$DIR/farm" "$2" "$3" >/dev/null
  . "$DIR/farm/farm.env"
  export DEPLOY_CACHE_DIR=$DIR/cache
}
