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

# Sends GET / to base URL $1 from 4 threads, each with cookie `$2=benchN` (a session: every
# request reaches an app host), until file $3 exists; prints "ok failed" (failed: any status
# but 200, or a connection error). A connection an answer closes is opened again.
bench_load() {
  python3 - "$1" "$2" "$3" <<'PY'
import http.client, os, sys, threading, urllib.parse
url, cookie, stop = urllib.parse.urlparse(sys.argv[1]), sys.argv[2], sys.argv[3]
counts = [[0, 0] for _ in range(4)]
def client(n):
    conn = None
    while not os.path.exists(stop):
        try:
            conn = conn or http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            conn.request("GET", "/", headers={"Cookie": f"{cookie}=bench{n}"})
            answer = conn.getresponse(); answer.read()
            counts[n][0 if answer.status == 200 else 1] += 1
            if answer.getheader("Connection", "").lower() == "close": conn = None
        except Exception:
            counts[n][1] += 1; conn = None
threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
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
