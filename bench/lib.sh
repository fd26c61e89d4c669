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
