#!/usr/bin/env bash
# The practical limit: the bare steps of a rolling release with plain bash and OpenSSH
# ControlMaster connections, nothing else (no lock, no journal, no checks beyond the health
# check, no rollback). Used by bench/compare.sh as the bar `deploy` must meet. It does the
# same work as deploy: the same build (bench_tarball), and after each undrain it waits until
# Varnish takes the host back, as deploy does.
#
#   tools/bash-deploy.sh FARM_DIR REPO
set -euo pipefail
FARM=$1 REPO=$2
. "$FARM/farm.env"
. "$(dirname "$0")/../lib.sh"
P=/var/www/shop
CTL=$(mktemp -d /tmp/bash-deploy.XXXXXX)
trap 'for a in $FARM_APP_ADDRS $FARM_LB; do ssh -F "$FARM/ssh_config" -o ControlPath="$CTL/%h" -O exit "$a" 2>/dev/null; done; rm -rf "$CTL"' EXIT
ssh_() { ssh -F "$FARM/ssh_config" -o ControlMaster=auto -o ControlPath="$CTL/%h" -o ControlPersist=60 "$@"; }
VADM="varnishadm -T $FARM_LB:6082 -S $FARM/varnish-secret"
# Runs "$@" until it succeeds; fails the release after 30 s (a benchmark must not hang).
until_ok() { local i; for ((i = 0; i < 600; i++)); do "$@" && return 0; sleep 0.05; done; echo "bash-deploy: gave up on: $*" >&2; exit 1; }
mark() { [ -z "${MARKS:-}" ] || echo "$1 $(date +%s.%N)" >> "$MARKS"; }   # phase boundaries for bench/compare.sh

commit=$(git -C "$REPO" rev-parse HEAD)
id=$(date -u +%Y%m%dT%H%M%SZ)-${commit:0:7}
tarball=$CTL/$id.tar.gz
bench_tarball "$REPO" "$tarball"

# One master connection per host, in parallel.
for a in $FARM_APP_ADDRS $FARM_LB; do ssh_ -M -f -N "$a" & done
wait

idle() { [ "$(ssh_ "$FARM_LB" "varnishstat -n $FARM/varnish -1 -f 'VBE.*.web$1.conn'" | awk '{s += $2} END {print s + 0}')" = 0 ]; }
healthy() { [ "$(ssh_ "$1" "curl -s -o /dev/null -w '%{http_code}' http://$1:8080/health")" = 200 ]; }
in_service() { ssh_ "$FARM_LB" "$VADM backend.list '*.web$1'" | awk 'NR > 1 && tolower($0) ~ /healthy/ && tolower($0) !~ /sick/ {ok = 1} END {exit !ok}'; }

# Upload, unpack, shared links: all hosts at once.
for a in $FARM_APP_ADDRS; do
  ssh_ "$a" "mkdir -p $P/releases/$id && tar -xzf - -C $P/releases/$id && mkdir -p $P/releases/$id/var $P/releases/$id/public && ln -sfn $P/shared/var/log $P/releases/$id/var/log && ln -sfn $P/shared/public/cache $P/releases/$id/public/cache && ln -sfn $P/shared/.env.local $P/releases/$id/.env.local" < "$tarball" &
done
wait

# One migration, on the first host.
mark migrate
first=${FARM_APP_ADDRS%% *}
ssh_ "$first" "cd $P/releases/$id && sh bin/console migrate" >/dev/null

mark roll
# Host by host: drain, wait for in-flight requests, switch, clear the cache, health, undrain.
i=0
for a in $FARM_APP_ADDRS; do
  i=$((i + 1))
  ssh_ "$FARM_LB" "$VADM backend.set_health '*.web$i' sick" >/dev/null
  until_ok idle "$i"
  ssh_ "$a" "ln -sfn releases/$id $P/.current.tmp && mv -fT $P/.current.tmp $P/current && rm -rf $P/shared/public/cache/*"
  until_ok healthy "$a"
  ssh_ "$FARM_LB" "$VADM backend.set_health '*.web$i' auto" >/dev/null
  until_ok in_service "$i"
done

mark finish
ssh_ "$FARM_LB" "$VADM ban req.url '~' ." >/dev/null
echo "$id"
