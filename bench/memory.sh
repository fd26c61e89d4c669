#!/usr/bin/env bash
# deploy's memory as the artifact grows: a release adding a SIZE MB file (not compressible),
# committed loose, then the same after `git gc` (packed), then a release adding SIZE MB more
# in many 256 KB files, to 2 hosts.
#
#   bench/memory.sh                  (as root; SIZE in MB, default 200)
#
# Prints deploy's own peak RSS (VmHWM of its process, read from /proc until it exits) and
# the peak of deploy and the children it waited for (GNU time's %M: what bench/scale.sh
# reports), which includes git and ssh.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
SIZE=${SIZE:-200}
build_deploy
bench_farm deploy-memory 2 shop
CONFIG=$DIR/farm/Deploy.toml
"$DEPLOY" -c "$CONFIG" farm --output json > /dev/null

# Runs a deploy; prints "own-peak-kB with-children-kB".
measure() {
  /usr/bin/time -f '%M' -o "$DIR/rss" "$DEPLOY" -c "$CONFIG" farm --output json > "$DIR/ev.json" &
  local timer=$! pid='' own=0 hwm
  while [ -z "$pid" ] && kill -0 "$timer" 2>/dev/null; do pid=$(pgrep -P "$timer" -x deploy || true); sleep 0.01; done
  while [ -n "$pid" ] && [ -e "/proc/$pid/status" ]; do
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$hwm" ] && own=$hwm
    sleep 0.02
  done
  wait "$timer"
  tail -1 "$DIR/ev.json" | grep -q '"exit_code":0' || { echo "memory: the deploy failed" >&2; exit 1; }
  echo "$own $(cat "$DIR/rss")"
}

printf '%-24s %14s %20s\n' release "deploy's own" 'with children (%M)'
head -c "$((SIZE << 20))" /dev/urandom > "$FARM_REPO/public/big.bin"
bench_commit "$FARM_REPO" "a $SIZE MB file"
read -r own all < <(measure)
printf '%-24s %11s kB %17s kB\n' "$SIZE MB file, loose" "$own" "$all"
git -C "$FARM_REPO" gc -q
echo packed >> "$FARM_REPO/public/health.txt"
bench_commit "$FARM_REPO" "the same, packed"
rm -rf "$DEPLOY_CACHE_DIR"
read -r own all < <(measure)
printf '%-24s %11s kB %17s kB\n' "$SIZE MB file, packed" "$own" "$all"
mkdir -p "$FARM_REPO/public/many"
python3 - "$FARM_REPO/public/many" "$SIZE" <<'PY'
import os, sys
for i in range(int(sys.argv[2]) * 4):
    with open(os.path.join(sys.argv[1], f"f{i:05}.bin"), "wb") as f:
        f.write(os.urandom(256 * 1024))
PY
bench_commit "$FARM_REPO" "$SIZE MB more in 256 KB files"
read -r own all < <(measure)
printf '%-24s %11s kB %17s kB\n' "+$SIZE MB in $((SIZE * 4)) files" "$own" "$all"
