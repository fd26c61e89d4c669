#!/usr/bin/env bash
# Side-by-side rolling releases on one farm, tools interleaved (A B C D, A B C D …), hosts
# reset between runs, every run verified. Prints, per mode and tool: median/min/max wall time,
# the median time of each phase, the rolling phase per host, and the cost of one remote command.
#
#   bench/compare.sh [HOSTS] [RUNS]        (default 8 hosts, 3 runs; as root)
#   TOOLS="deploy bash" MODES=warm bench/compare.sh 4 5
#   TOOLS="deploy deploy-links" MODES=warm bench/compare.sh 8 5   # warm: copies vs hard links
#
# Tools: `deploy` (default settings), `deploy-links` (the same with `[build] reuse = "hardlink"`), the bash + ControlMaster limit
# (bench/tools/bash-deploy.sh), Capistrano 3.17 (bench/tools/capistrano, Debian package) and
# Ansible (bench/tools/ansible-deploy.yml, ansible-core from PyPI in ~/.cache/deploy-bench).
# The workload: a ~20 MB app of ~2,000 files (half text, half incompressible), a fresh commit
# each run; upload + unpack + shared links on all hosts, one migration, host by host drain →
# switch → clear the cache folder → health → undrain, one ban.
# Modes: `cold`, the hosts' current release is unknown to every tool (deploy finds no
# manifest, so it sends everything, like the others); `warm`, the new commit rewrites 20 of
# the 2,000 files (1%) and the hosts' current release is deploy's own.
# Phases: prepare (start → migration: build, connect, lock, upload, unpack, links), migrate,
# roll, finish (ban, release log, cleanup, unlock, exit).
# Every tool does the same work: the same build (bin/build, which deploy runs and the others
# run through bench_tarball), the same steps, and after each undrain the same wait until
# Varnish takes the host back. A light load (2 clients through Varnish, ~100 requests a second
# each) runs during every run,
# and the failed requests are reported per tool. Every run is verified (bench_verify): each
# host answers 200 on /cart with the new release and 200 on / with the page built for the
# commit, every backend is in service, and the ban cleared Varnish's cached /.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
HOSTS=${1:-8} RUNS=${2:-3} TOOLS=${TOOLS:-deploy bash capistrano ansible} MODES=${MODES:-cold warm}
case " $TOOLS " in *" capistrano "*) command -v cap >/dev/null || apt-get install -y -qq capistrano ruby-ed25519 ruby-bcrypt-pbkdf >/dev/null ;; esac
ANSIBLE=/root/.cache/deploy-bench/ansible
case " $TOOLS " in *" ansible "*)
  [ -x "$ANSIBLE/bin/ansible-playbook" ] || { python3 -m venv "$ANSIBLE" && "$ANSIBLE/bin/pip" install -q 'ansible-core>=2.19,<2.20'; } ;;
esac
DIR=$(bench_dir deploy-compare)
FARM=$DIR/farm
trap 'tests/farm/farm.sh down "$FARM" >/dev/null 2>&1; rm -rf "$DIR"' EXIT
build_deploy
tests/farm/farm.sh up "$FARM" "$HOSTS" >/dev/null
. "$FARM/farm.env"
REPO=$FARM/shop

bench_app "$FARM"
export DEPLOY_CACHE_DIR=$DIR/cache
# deploy-links: unchanged files of a warm release hard-linked instead of copied.
sed 's/^\[build\]$/[build]\nreuse = "hardlink"/' "$FARM/Deploy.toml" > "$FARM/Deploy-links.toml"
grep -q '^reuse = "hardlink"$' "$FARM/Deploy-links.toml" || { echo "no [build] table in $FARM/Deploy.toml" >&2; exit 1; }
"$DEPLOY" -c "$FARM/Deploy.toml" farm --output plain >/dev/null 2>&1   # a first release to roll from
base=$(readlink "$FARM/hosts/web1/www/shop/current")

# Capistrano's stage file and Ansible's inventory for this farm.
mkdir -p bench/tools/capistrano/config/deploy
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
log_path = $DIR/ansible-run.log
[ssh_connection]
pipelining = True
ssh_args = -F $FARM/ssh_config -o ControlMaster=auto -o ControlPersist=60s
control_path_dir = $DIR/cp
CFG

reset_hosts() { # $1 = mode; every host back on the base release, nothing else
  for h in $FARM_APP_HOSTS; do
    local root=$FARM/hosts/$h/www/shop
    find "$root/releases" -mindepth 1 -maxdepth 1 ! -name "${base#releases/}" -exec rm -rf {} +
    find "$root/.deploy/manifests" -mindepth 1 -maxdepth 1 ! -name "${base#releases/}*" -exec rm -f {} + 2>/dev/null || true
    ln -sfn "$base" "$root/current"
    rm -rf "$root/.deploy/lock" "$root/.deploy/journal.json" "$root/.deploy/incoming"
    # The base release's manifest and file listing: put aside for a cold run, back for a warm one.
    mkdir -p "$DIR/aside/$h"
    if [ "$1" = cold ]; then
      mv "$root/.deploy/manifests/${base#releases/}"* "$DIR/aside/$h/" 2>/dev/null || true
    else
      mv "$DIR/aside/$h/"* "$root/.deploy/manifests/" 2>/dev/null || true
    fi
  done
}

change() { # $1 = mode, $2 = label: a new commit
  echo "$2" > "$REPO/public/run.txt"
  [ "$1" = warm ] && change_1pct "$REPO" "$2"
  bench_commit "$REPO" "$2"
}


# One tool's phase boundaries as "phase seconds-since-start" lines, from its marks.
phases() { # tool start end
  case $1 in
    deploy | deploy-links) python3 - "$2" "$3" "$DIR/deploy.json" <<'PY' ;;
import datetime, json, sys
start, end = float(sys.argv[1]), float(sys.argv[2])
ev = [json.loads(l) for l in open(sys.argv[3]) if l.startswith("{")]
t = lambda e: datetime.datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()
at = {e["phase"]: t(e) for e in ev if e["event"] == "phase_started"}
roll_end = next(t(e) for e in ev if e["event"] == "phase_finished" and e["phase"] == "roll")
mig = at.get("migrate", at["roll"])
print(f"prepare {mig - start:.3f}\nmigrate {at['roll'] - mig:.3f}\nroll {roll_end - at['roll']:.3f}\nfinish {end - roll_end:.3f}")
cmd = sorted(e["seconds"] for e in ev if e["event"] == "host_activated")
print(f"command {cmd[len(cmd) // 2]:.4f}")
PY
    ansible) python3 - "$2" "$3" "$DIR/ansible-run.log" <<'PY' ;;
import datetime, re, sys
start, end = float(sys.argv[1]), float(sys.argv[2])
at = {}
for l in open(sys.argv[3]):
    m = re.match(r"(\d+-\d+-\d+ \d+:\d+:\d+),(\d+) .*PLAY \[(.*?)\]", l)
    if m:
        ts = datetime.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").timestamp() + int(m[2]) / 1000
        at[m[3]] = ts
print(f"prepare {at['migrate once'] - start:.3f}\nmigrate {at['roll'] - at['migrate once']:.3f}\nroll {at['ban'] - at['roll']:.3f}\nfinish {end - at['ban']:.3f}")
PY
    *) awk -v s="$2" -v e="$3" '{t[$1] = $2} END {printf "prepare %.3f\nmigrate %.3f\nroll %.3f\nfinish %.3f\n", t["migrate"] - s, t["roll"] - t["migrate"], t["finish"] - t["roll"], e - t["finish"]}' "$DIR/marks" ;;
  esac
}

declare -A times phase
for mode in $MODES; do
  for ((r = 1; r <= RUNS; r++)); do
    for tool in $TOOLS; do
      reset_hosts "$mode"
      change "$mode" "$mode run $r $tool"
      rm -f "$DIR/marks" "$DIR/ansible-run.log" "$DIR/stop-load"
      export MARKS=$DIR/marks
      bench_prime
      # A light load through Varnish for the whole run (2 clients with a cart, so every
      # request reaches an app host, ~100 requests a second each): a tool that drops
      # requests shows it beside its time.
      bench_load "$FARM_VARNISH" cart "$DIR/stop-load" 2 0.01 > "$DIR/load" &
      loader=$!
      start=$(date +%s.%N)
      case $tool in
        deploy | deploy-links)
          config=$FARM/Deploy.toml; [ "$tool" = deploy-links ] && config=$FARM/Deploy-links.toml
          /usr/bin/time -f '%M' -o "$DIR/rss" "$DEPLOY" -c "$config" farm --output json > "$DIR/deploy.json"
          end=$(date +%s.%N) # before reading the events: that is the bench's time, not deploy's
          id=$(python3 -c 'import json,sys; print([json.loads(l)["release"] for l in open(sys.argv[1]) if "deploy_started" in l][0])' "$DIR/deploy.json")
          sent=$(python3 -c 'import json,sys; print(" ".join(sorted({json.loads(l)["kind"] for l in open(sys.argv[1]) if "\"sent\"" in l})))' "$DIR/deploy.json")
          [ "$sent" = "$( [ "$mode" = warm ] && echo delta || echo full)" ] || { echo "deploy sent $sent in $mode mode" >&2; exit 1; }
          times[rss]+="$(cat "$DIR/rss") "
          times[build/$mode]+="$(python3 -c 'import json,sys; print([json.loads(l)["seconds"] for l in open(sys.argv[1]) if "\"built\"" in l][0])' "$DIR/deploy.json") "
          ;;
        bash) id=$(bench/tools/bash-deploy.sh "$FARM" "$REPO") ;;
        capistrano) id=$(cd bench/tools/capistrano && FARM=$FARM REPO=$REPO cap bench bench:release 2>/dev/null | grep -E '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{7}$' | tail -1) ;;
        ansible)
          commit=$(git -C "$REPO" rev-parse HEAD)
          id=$(date -u +%Y%m%dT%H%M%SZ)-${commit:0:7}
          bench_tarball "$REPO" "$DIR/$id.tar.gz"
          ANSIBLE_CONFIG=$DIR/ansible.cfg "$ANSIBLE/bin/ansible-playbook" bench/tools/ansible-deploy.yml \
            -e "farm=$FARM repo_tarball=$DIR/$id.tar.gz release_id=$id" >"$DIR/ansible.log" 2>&1 || { cat "$DIR/ansible.log" >&2; exit 1; }
          rm -f "$DIR/$id.tar.gz"
          ;;
      esac
      case $tool in deploy*) ;; *) end=$(date +%s.%N) ;; esac
      touch "$DIR/stop-load"
      wait "$loader"
      read -r served failed < "$DIR/load"
      [ "$served" -gt 0 ] || { echo "compare: the load sent nothing during $tool's run" >&2; exit 1; }
      times[failed/$mode/$tool]+="$failed "
      times[served/$mode/$tool]+="$served "
      bench_verify "$id" "$(git -C "$REPO" rev-parse HEAD)" || { echo "compare: $tool's $mode run $r is wrong" >&2; exit 1; }
      times[$mode/$tool]+="$(echo "$end - $start" | bc) "
      while read -r p v; do phase[$mode/$tool/$p]+="$v "; done < <(phases "$tool" "$start" "$end")
    done
  done
done

# The cost of one remote command, for the tools that have no event for it: N sequential
# no-op commands on one host, minus the same run with none, divided by N.
N=20
overhead() { # tool n → seconds for the whole run
  local s; s=$(date +%s.%N)
  case $1 in
    bash)
      local ctl; ctl=$(mktemp -d /tmp/bench-ctl.XXXXXX)
      ssh -F "$FARM/ssh_config" -o ControlMaster=yes -o ControlPath="$ctl/m" -o ControlPersist=60 -f -N "${FARM_APP_ADDRS%% *}"
      for ((i = 0; i < $2; i++)); do ssh -F "$FARM/ssh_config" -o ControlPath="$ctl/m" "${FARM_APP_ADDRS%% *}" true; done
      ssh -F "$FARM/ssh_config" -o ControlPath="$ctl/m" -O exit "${FARM_APP_ADDRS%% *}" 2>/dev/null; rm -rf "$ctl" ;;
    capistrano) (cd bench/tools/capistrano && FARM=$FARM REPO=$REPO N=$2 cap bench bench:noop >/dev/null 2>&1) ;;
    ansible) ANSIBLE_CONFIG=$DIR/ansible.cfg "$ANSIBLE/bin/ansible-playbook" bench/tools/ansible-noop.yml -e "n=$2" >/dev/null 2>&1 ;;
  esac
  echo "$(date +%s.%N) - $s" | bc
}
declare -A per_cmd
for tool in $TOOLS; do
  case $tool in deploy*) continue ;; esac
  t0=$(overhead "$tool" 0); tn=$(overhead "$tool" $N)
  per_cmd[$tool]=$(echo "($tn - $t0) / $N" | bc -l)
done

median() { tr ' ' '\n' <<< "$1" | grep . | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "rolling release of a ~20 MB, 2,000-file app to $HOSTS hosts behind Varnish, $RUNS runs per tool and mode"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in $MODES; do
  echo
  echo "$mode:"
  printf '%-11s %8s %8s %8s | %8s %8s %8s %8s | %9s %9s | %s\n' tool median min max prepare migrate roll finish roll/host command \
    'failed requests (of served)' 
  ref=""
  for tool in $TOOLS; do
    sorted=$(tr ' ' '\n' <<< "${times[$mode/$tool]}" | grep . | sort -g)
    med=$(median "${times[$mode/$tool]}")
    cmd=${per_cmd[$tool]:-$(median "${phase[$mode/$tool/command]:-}")}
    failed=$(tr ' ' '\n' <<< "${times[failed/$mode/$tool]}" | grep . | paste -sd+ | bc)
    served=$(tr ' ' '\n' <<< "${times[served/$mode/$tool]}" | grep . | paste -sd+ | bc)
    printf '%-11s %7.2fs %7.2fs %7.2fs | %7.2fs %7.2fs %7.2fs %7.2fs | %7.0fms %7.1fms | %s of %s\n' "$tool" "$med" \
      "$(head -1 <<< "$sorted")" "$(tail -1 <<< "$sorted")" \
      "$(median "${phase[$mode/$tool/prepare]}")" "$(median "${phase[$mode/$tool/migrate]}")" \
      "$(median "${phase[$mode/$tool/roll]}")" "$(median "${phase[$mode/$tool/finish]}")" \
      "$(echo "$(median "${phase[$mode/$tool/roll]}") * 1000 / $HOSTS" | bc -l)" "$(echo "${cmd:-0} * 1000" | bc -l)" \
      "$failed" "$served"
  done
  for tool in $TOOLS; do
    [ "$tool" = deploy ] && continue
    case " $TOOLS " in *" deploy "*)
      printf '  %s / deploy: %.2f×\n' "$tool" "$(echo "$(median "${times[$mode/$tool]}") / $(median "${times[$mode/deploy]}")" | bc -l)" ;;
    esac
  done
done
case " $TOOLS " in *" deploy "*)
  echo
  echo "deploy peak RSS (largest of deploy and its ssh children): median $(median "${times[rss]}") KiB"
  for mode in $MODES; do echo "deploy's build ($mode: export, bin/build, manifest): median $(median "${times[build/$mode]}") s"; done ;;
esac
echo "(command: deploy's median activate step — one remote command — in these runs; others: ($N no-op commands − none) / $N)"
