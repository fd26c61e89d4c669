#!/usr/bin/env bash
# The practical limit: the bare steps of a rolling release with plain bash and OpenSSH
# ControlMaster connections, nothing else (no lock, no journal, no checks beyond the health
# check, no rollback). Used by bench/compare.sh as the bar `deploy` must meet.
#
#   tools/bash-deploy.sh FARM_DIR REPO
set -euo pipefail
FARM=$1 REPO=$2
. "$FARM/farm.env"
P=/var/www/shop
CTL=$(mktemp -d /tmp/bash-deploy.XXXXXX)
trap 'for a in $FARM_APP_ADDRS $FARM_LB; do ssh -F "$FARM/ssh_config" -o ControlPath="$CTL/%h" -O exit "$a" 2>/dev/null; done; rm -rf "$CTL"' EXIT
ssh_() { ssh -F "$FARM/ssh_config" -o ControlMaster=auto -o ControlPath="$CTL/%h" -o ControlPersist=60 "$@"; }
VADM="varnishadm -T $FARM_LB:6082 -S $FARM/varnish-secret"
mark() { [ -z "${MARKS:-}" ] || echo "$1 $(date +%s.%N)" >> "$MARKS"; }   # phase boundaries for bench/compare.sh

commit=$(git -C "$REPO" rev-parse HEAD)
id=$(date -u +%Y%m%dT%H%M%SZ)-${commit:0:7}
tarball=$CTL/$id.tar.gz
git -C "$REPO" archive --format=tar HEAD | gzip -1 > "$tarball"

# One master connection per host, in parallel.
for a in $FARM_APP_ADDRS $FARM_LB; do ssh_ -M -f -N "$a" & done
wait

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
  until [ "$(ssh_ "$FARM_LB" "varnishstat -n $FARM/varnish -1 -f 'VBE.*.web$i.conn'" | awk '{s += $2} END {print s + 0}')" = 0 ]; do sleep 0.05; done
  ssh_ "$a" "ln -sfn releases/$id $P/.current.tmp && mv -fT $P/.current.tmp $P/current && rm -rf $P/shared/public/cache/*"
  until [ "$(ssh_ "$a" "curl -s -o /dev/null -w '%{http_code}' http://$a:8080/health")" = 200 ]; do sleep 0.05; done
  ssh_ "$FARM_LB" "$VADM backend.set_health '*.web$i' auto" >/dev/null
done

mark finish
ssh_ "$FARM_LB" "$VADM ban req.url '~' ." >/dev/null
echo "$id"
