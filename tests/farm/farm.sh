#!/usr/bin/env bash
# A local server farm on loopback addresses, for the end-to-end tests and the demo.
#
#   farm.sh up DIR [HOSTS]   start HOSTS app hosts (default 4) and a balancer host; prints DIR
#   farm.sh down DIR         stop everything the farm started, by PID
#
# Each host is its own sshd on its own address 127.ID.0.X:22, inside its own mount and UTS
# namespace with a private /var/www and /root (so no slow rc file is read at login) and its
# own hostname. App hosts also run nginx on :8080 serving /var/www/shop/current/public.
# The balancer host (127.ID.0.2) runs Varnish (:6081 HTTP, :6082 admin) and HAProxy (:8081,
# runtime API socket DIR/haproxy.sock) in front of the app hosts.
#
# Written for root on Debian with openssh-server, nginx-light, varnish, haproxy, socat.
set -euo pipefail

FARM_SH=$(readlink -f "$0")
cd /  # the caller's folder may go away while the farm runs
IDS=/tmp/deploy-farm-ids
APP_PATH=/var/www/shop

die() { echo "farm: $*" >&2; exit 1; }

alive() { # pid → is it running (zombies count as dead)
  local s
  s=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

wait_port() { # addr port seconds
  local i
  for ((i = 0; i < $3 * 50; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.02
  done
  return 1
}

claim_id() { # dir → prints a farm id no other live farm uses
  mkdir -p "$IDS"
  local id owner
  for id in $(seq 11 250); do
    if mkdir "$IDS/$id" 2>/dev/null; then
      echo "$1" > "$IDS/$id/dir"
      echo "$id"; return 0
    fi
    owner=$(cat "$IDS/$id/dir" 2>/dev/null || true)
    # Reclaim an id whose farm is gone (a test killed before its teardown).
    if [ -n "$owner" ] && [ ! -e "$owner/pids" ] && [ "$(( $(date +%s) - $(stat -c %Y "$IDS/$id") ))" -gt 60 ]; then
      rm -rf "$IDS/$id"
      mkdir "$IDS/$id" 2>/dev/null && { echo "$1" > "$IDS/$id/dir"; echo "$id"; return 0; }
    fi
  done
  die "no free farm id under $IDS"
}

host_conf() { # name addr dir app(0/1)
  local name=$1 addr=$2 d=$3
  mkdir -p "$d/www" "$d/root" "$d/tmp" "$d/log"
  ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$d/ssh_host_ed25519_key"
  cat > "$d/sshd_config" <<CONF
ListenAddress $addr:22
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
AuthorizedKeysFile $FARM/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
MaxStartups 100:30:200
LogLevel ERROR
Subsystem sftp internal-sftp
CONF
  echo "$addr $(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")" >> "$FARM/known_hosts"
  if [ "$4" = 1 ]; then
    mkdir -p "$d/www/shop/shared/public/cache" "$d/www/shop/shared/var/log"
    cat > "$d/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $d/nginx.pid;
error_log $d/log/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    open_file_cache off;
    keepalive_timeout 30s;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    default_type text/plain;
    types { text/html html; application/json json; }
    server {
        listen $addr:8080 reuseport;
        root $APP_PATH/current/public;
        add_header X-Host \$hostname always;
        add_header X-Release \$realpath_root always;
        add_header Cache-Control "max-age=300" always;
        location = / { try_files /cache/index.html /index.html =404; }
        location = /health { try_files /health.txt =404; }
        location = /cart { try_files /cart.json =404; }
        location / { try_files \$uri =404; }
    }
}
CONF
    # What the app reads at run time (a shared file, like Symfony's .env.local).
    cat > "$d/www/shop/shared/.env.local" <<CONF
FARM_HOST=$name
NGINX_CONF=$d/nginx.conf
NGINX_PID=$d/nginx.pid
DB_DIR=$FARM/db
CONF
  fi
}

start_host() { # name addr dir app(0/1)
  local name=$1 addr=$2 d=$3 pid i
  setsid unshare --mount --uts --propagation private -- sh -c \
    "mount --bind '$d/www' /var/www && mount --bind '$d/root' /root && hostname '$name' && exec sleep infinity" \
    </dev/null >/dev/null 2>&1 &
  pid=$!
  echo "$pid" > "$FARM/pids/ns-$name"
  for ((i = 0; i < 250; i++)); do
    [ "$(nsenter -t "$pid" -u hostname 2>/dev/null)" = "$name" ] && break
    sleep 0.02
  done
  [ "$(nsenter -t "$pid" -u hostname 2>/dev/null)" = "$name" ] || die "namespace for $name did not come up"
  nsenter -t "$pid" -m -u -- /usr/sbin/sshd -f "$d/sshd_config"
  if [ "$4" = 1 ]; then
    nsenter -t "$pid" -m -u -- nginx -c "$d/nginx.conf" </dev/null >/dev/null 2>&1
  fi
}

up() {
  FARM=$(readlink -f "$1"); local n=${2:-4}
  [ -d "$FARM" ] || mkdir -p "$FARM"
  [ -e "$FARM/pids" ] && die "$FARM already holds a farm (farm.sh down $FARM first)"
  for t in /usr/sbin/sshd nginx varnishd varnishadm haproxy socat unshare nsenter ssh ssh-keygen; do
    command -v "$t" >/dev/null || die "missing $t (scripts/test installs the farm's Debian packages)"
  done
  mkdir -p "$FARM/pids" "$FARM/db" /var/www /run/sshd
  chmod 755 "$FARM"
  # A farm that fails half-way stops what it started.
  trap 'echo "farm: stopping the half-started farm" >&2; down "$FARM" >/dev/null 2>&1' EXIT
  local id; id=$(claim_id "$FARM")
  echo "$id" > "$FARM/id"
  local lb=127.$id.0.2
  ssh-keygen -q -t ed25519 -N '' -C farm -f "$FARM/id_ed25519"
  cp "$FARM/id_ed25519.pub" "$FARM/authorized_keys"
  : > "$FARM/known_hosts"

  local names=(lb) addrs=("$lb") i
  for ((i = 1; i <= n; i++)); do names+=("web$i"); addrs+=("127.$id.0.$((10 + i))"); done
  for ((i = 0; i <= n; i++)); do
    host_conf "${names[$i]}" "${addrs[$i]}" "$FARM/hosts/${names[$i]}" "$((i > 0))"
  done

  cat > "$FARM/ssh_config" <<CONF
Host 127.$id.0.*
    User root
    IdentityFile $FARM/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $FARM/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR
CONF

  # Varnish: one backend per app host, a probe, round robin, GET caching, bans allowed.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$FARM/varnish-secret"
  chmod 600 "$FARM/varnish-secret"
  {
    echo 'vcl 4.1;'
    echo 'import directors;'
    echo 'probe health { .url = "/health"; .interval = 100ms; .timeout = 1s; .window = 3; .threshold = 2; .initial = 3; }'
    for ((i = 1; i <= n; i++)); do
      echo "backend web$i { .host = \"${addrs[$i]}\"; .port = \"8080\"; .probe = health; .connect_timeout = 1s; }"
    done
    echo 'acl purgers { "127.0.0.0"/8; }'
    echo 'sub vcl_init { new rr = directors.round_robin();'
    for ((i = 1; i <= n; i++)); do echo "  rr.add_backend(web$i);"; done
    echo '}'
    cat <<'VCL'
sub vcl_recv {
    set req.backend_hint = rr.backend();
    if (req.method == "BAN" || req.method == "PURGE") {
        if (client.ip !~ purgers) { return (synth(403, "Forbidden")); }
        ban("obj.status != 0");
        return (synth(200, "Banned"));
    }
    # Carts are per session: never cached, always a backend request.
    if (req.url ~ "^/cart" || req.http.Cookie ~ "cart=") { return (pass); }
    unset req.http.Cookie;
    return (hash);
}
sub vcl_backend_response { set beresp.ttl = 300s; set beresp.grace = 0s; }
sub vcl_deliver {
    if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
VCL
  } > "$FARM/default.vcl"

  # HAProxy: the same hosts, runtime API on a socket.
  {
    cat <<CONF
global
    stats socket $FARM/haproxy.sock mode 600 level admin
    stats socket $FARM/haproxy-operator.sock mode 600 level operator
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend shop
    bind $lb:8081
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /health
CONF
    for ((i = 1; i <= n; i++)); do
      echo "    server web$i ${addrs[$i]}:8080 check inter 100ms fall 2 rise 2"
    done
  } > "$FARM/haproxy.cfg"

  for ((i = 0; i <= n; i++)); do
    start_host "${names[$i]}" "${addrs[$i]}" "$FARM/hosts/${names[$i]}" "$((i > 0))"
  done
  mkdir -p "$FARM/varnish"
  varnishd -n "$FARM/varnish" -a "$lb:6081" -T "$lb:6082" -S "$FARM/varnish-secret" \
    -f "$FARM/default.vcl" -P "$FARM/varnishd.pid" -s malloc,64m -t 300 \
    -p first_byte_timeout=10 -p connect_timeout=1 >"$FARM/varnishd.log" 2>&1 \
    || { cat "$FARM/varnishd.log" >&2; die "varnishd did not start"; }
  cp "$FARM/varnishd.pid" "$FARM/pids/varnishd"
  haproxy -D -f "$FARM/haproxy.cfg" -p "$FARM/haproxy.pid" >"$FARM/haproxy.log" 2>&1 \
    || { cat "$FARM/haproxy.log" >&2; die "haproxy did not start"; }
  cp "$FARM/haproxy.pid" "$FARM/pids/haproxy"

  for ((i = 0; i <= n; i++)); do
    wait_port "${addrs[$i]}" 22 10 || die "sshd of ${names[$i]} does not answer on ${addrs[$i]}:22"
    [ "$i" -gt 0 ] && { wait_port "${addrs[$i]}" 8080 10 || die "nginx of ${names[$i]} does not answer"; }
  done
  wait_port "$lb" 6082 10 || die "varnish admin does not answer on $lb:6082"
  wait_port "$lb" 8081 10 || die "haproxy does not answer on $lb:8081"

  example_app "$id" "${names[*]:1}" "${addrs[*]:1}"
  {
    echo "FARM=$FARM"
    echo "FARM_ID=$id"
    echo "FARM_LB=$lb"
    echo "FARM_VARNISH=http://$lb:6081"
    echo "FARM_HAPROXY=http://$lb:8081"
    echo "FARM_APP_HOSTS=\"${names[*]:1}\""
    echo "FARM_APP_ADDRS=\"${addrs[*]:1}\""
  } > "$FARM/farm.env"
  trap - EXIT
  echo "$FARM"
}

# The example app as a git repository (FARM/shop) and a Deploy.toml for this farm, with a
# stage per balancer: `farm` (Varnish) and `farm-haproxy`.
example_app() { # id "names" "addrs"
  local id=$1 lb=127.$1.0.2 src
  src=$(dirname "$FARM_SH")/../../examples/shop
  [ -d "$src" ] || die "example app not found at $src"
  rm -rf "$FARM/shop"
  cp -a "$src" "$FARM/shop"
  git -C "$FARM/shop" init -q -b main
  git -C "$FARM/shop" add -A
  git -C "$FARM/shop" -c user.name=farm -c user.email=farm@localhost -c commit.gpgsign=false commit -q -m "shop: first release"
  local hosts="" n i=0 a
  for n in $2; do
    a=$(echo "$3" | cut -d' ' -f$((i + 1)))
    if [ $i -eq 0 ]; then
      hosts+="  { name = \"$n\", address = \"$a\", roles = [\"app\", \"migrate\"] },"$'\n'
    else
      hosts+="  { name = \"$n\", address = \"$a\", roles = [\"app\"] },"$'\n'
    fi
    i=$((i + 1))
  done
  hosts+="  { name = \"lb\", address = \"$lb\", roles = [\"balancer\"] },"
  cat > "$FARM/Deploy.toml" <<CONF
# Deploy.toml for the local farm in $FARM (written by tests/farm/farm.sh).

[app]
name = "shop"
path = "$APP_PATH"
repository = "$FARM/shop"
keep_releases = 3

[build]
commands = ["sh bin/build"]

[shared]
dirs = ["var/log", "public/cache"]
files = [".env.local"]

[hooks]
prepare = ["sh bin/console cache:warmup"]
activate = ["sh bin/console cache:clear", "sh bin/reload-app"]
migrate = "sh bin/console migrate"

[health]
url = "http://{address}:8080/health"
timeout = "2s"
retries = 50
interval = "100ms"

[rolling]
batch = 1
drain_timeout = "10s"

[ssh]
config = "$FARM/ssh_config"

[stages.farm]
hosts = [
$hosts
]

[stages.farm.balancer]
kind = "varnish"
host = "lb"
admin = "$lb:6082"
secret = "$FARM/varnish-secret"
instance = "$FARM/varnish"

[[stages.farm.http_cache]]
kind = "varnish"
host = "lb"
admin = "$lb:6082"
secret = "$FARM/varnish-secret"
bans = ["req.url ~ ."]

[stages.farm-haproxy]
hosts = [
$hosts
]

[stages.farm-haproxy.balancer]
kind = "haproxy"
host = "lb"
socket = "$FARM/haproxy.sock"
backend = "app"

[stages.farm-haproxy.health]       # checked from the deploying machine for this stage
from = "local"

[[stages.farm-haproxy.http_cache]]
kind = "http"
method = "BAN"
url = "http://$lb:6081/"
CONF
}

down() {
  local farm; farm=$(readlink -f "$1")
  [ -d "$farm/pids" ] || return 0
  local f pid ns p
  # Every process inside a host's namespaces (sshd sessions, nginx restarted by hooks…).
  for f in "$farm"/pids/ns-*; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    alive "$pid" || continue
    ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || continue
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = "$pid" ] && continue
      [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ] && kill -KILL "$p" 2>/dev/null || true
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for f in "$farm"/pids/varnishd "$farm"/pids/haproxy; do
    [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  # haproxy may have been reloaded: its current pid file wins.
  [ -e "$farm/haproxy.pid" ] && kill -TERM $(cat "$farm/haproxy.pid") 2>/dev/null || true
  for f in "$farm"/pids/*; do
    pid=$(cat "$f")
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.02; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  done
  local id; id=$(cat "$farm/id" 2>/dev/null || true)
  rm -rf "$farm/pids"
  [ -n "$id" ] && rm -rf "${IDS:?}/$id"
  return 0
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) shift; down "$@" ;;
  *) echo "usage: $FARM_SH up DIR [HOSTS] | down DIR" >&2; exit 2 ;;
esac
