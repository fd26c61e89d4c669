#!/usr/bin/env bash
# Side-by-side rolling releases on one farm, tools interleaved (A B A B …), hosts reset
# between runs, every run verified. Prints median/min/max wall time per tool.
#
#   bench/compare.sh [HOSTS] [RUNS]        (default 8 hosts, 3 runs; as root)
#
# Tools: `deploy` (default settings), the bash + ControlMaster limit
# (bench/tools/bash-deploy.sh), Capistrano 3.17 (bench/tools/capistrano, Debian package) and
# Ansible (bench/tools/ansible-deploy.yml, ansible-core from PyPI in ~/.cache/deploy-bench). The workload: a ~20 MB app of ~2,000 files (half text, half
# incompressible), a fresh commit each run; upload + unpack + shared links on all hosts, one
# migration, host by host drain → switch → clear the cache folder → health → undrain, one ban.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-8} RUNS=${2:-3} TOOLS=${TOOLS:-deploy bash capistrano ansible}
case " $TOOLS " in *" capistrano "*) command -v cap >/dev/null || apt-get install -y -qq capistrano ruby-ed25519 ruby-bcrypt-pbkdf >/dev/null ;; esac
ANSIBLE=/root/.cache/deploy-bench/ansible
case " $TOOLS " in *" ansible "*)
  [ -x "$ANSIBLE/bin/ansible-playbook" ] || { python3 -m venv "$ANSIBLE" && "$ANSIBLE/bin/pip" install -q 'ansible-core>=2.19,<2.20'; } ;;
esac
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

# Capistrano's stage file and Ansible's inventory for this farm.
{
  i=0
  for a in $FARM_APP_ADDRS; do
    i=$((i + 1))
    roles='%w[app]'; [ $i = 1 ] && roles='%w[app migrate]'
    echo "server \"$a\", user: \"root\", roles: $roles, backend: \"web$i\""
  done
  echo "server \"$FARM_LB\", user: \"root\", roles: %w[balancer]"
  echo "set :ssh_options, { keys: [\"$FARM/id_ed25519\"], keys_only: true, user_known_hosts_file: \"$FARM/known_hosts\", global_known_hosts_file: \"/dev/null\", verify_host_key: :always, config: false }"
} > bench/tools/capistrano/config/deploy/bench.rb
{
  echo "[app]"
  i=0
  for a in $FARM_APP_ADDRS; do i=$((i + 1)); echo "web$i ansible_host=$a"; done
  echo "[migrate]"; echo "web1"
  echo "[lbs]"; echo "lb ansible_host=$FARM_LB"
  echo "[all:vars]"; echo "ansible_user=root"; echo "ansible_python_interpreter=/usr/bin/python3"
} > "$DIR/inventory"
mkdir -p "$DIR/cp"
cat > "$DIR/ansible.cfg" <<CFG
[defaults]
inventory = $DIR/inventory
host_key_checking = True
forks = 8
retry_files_enabled = False
[ssh_connection]
pipelining = True
ssh_args = -F $FARM/ssh_config -o ControlMaster=auto -o ControlPersist=60s
control_path_dir = $DIR/cp
CFG

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
  for tool in $TOOLS; do
    reset_hosts
    echo "run $r $tool" > "$REPO/public/run.txt"
    git -C "$REPO" add -A && git -C "$REPO" -c user.name=b -c user.email=b@localhost commit -qm "run $r $tool"
    start=$(date +%s.%N)
    case $tool in
      deploy) id=$("$DEPLOY" -c "$FARM/Deploy.toml" farm --output json | python3 -c 'import json,sys; print([json.loads(l)["release"] for l in sys.stdin if "deploy_started" in l][0])') ;;
      bash) id=$(bench/tools/bash-deploy.sh "$FARM" "$REPO") ;;
      capistrano) id=$(cd bench/tools/capistrano && FARM=$FARM REPO=$REPO cap bench bench:release 2>/dev/null | grep -E '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{7}$' | tail -1) ;;
      ansible)
        commit=$(git -C "$REPO" rev-parse HEAD)
        id=$(date -u +%Y%m%dT%H%M%SZ)-${commit:0:7}
        git -C "$REPO" archive --format=tar HEAD | gzip -1 > "$DIR/$id.tar.gz"
        ANSIBLE_CONFIG=$DIR/ansible.cfg "$ANSIBLE/bin/ansible-playbook" bench/tools/ansible-deploy.yml \
          -e "farm=$FARM repo_tarball=$DIR/$id.tar.gz release_id=$id" >"$DIR/ansible.log" 2>&1 || { cat "$DIR/ansible.log" >&2; exit 1; }
        ;;
    esac
    end=$(date +%s.%N)
    verify "$id"
    times[$tool]+="$(echo "$end - $start" | bc) "
  done
done

echo "rolling release of a ~20 MB, 2,000-file app to $HOSTS hosts behind Varnish, $RUNS runs each (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-11s %8s %8s %8s\n' tool median min max
for tool in $TOOLS; do
  sorted=$(tr ' ' '\n' <<< "${times[$tool]}" | grep . | sort -n)
  n=$(wc -l <<< "$sorted")
  printf '%-11s %7.2fs %7.2fs %7.2fs\n' "$tool" "$(sed -n "$(((n + 1) / 2))p" <<< "$sorted")" "$(head -1 <<< "$sorted")" "$(tail -1 <<< "$sorted")"
done
