#!/usr/bin/env bash
# A local server farm on loopback addresses, for the end-to-end tests and the demo.
#
#   farm.sh up DIR [HOSTS] [STACK]  start HOSTS app hosts (default 4) and a balancer host
#                                   running STACK (default shop); prints DIR
#   farm.sh down DIR                stop everything the farm started, by PID
#
# Each host is its own sshd on its own address 127.ID.0.X:22, inside its own mount and UTS
# namespace with a private /var/www and /root (so no slow rc file is read at login) and its
# own hostname. The balancer host (127.ID.0.2) runs Varnish (:6081 HTTP, :6082 admin) and
# HAProxy (:8081, runtime API socket DIR/haproxy.sock) in front of the app hosts, which
# serve on :8080. What they run is the STACK:
#
#   shop     nginx serving the shell-script app examples/shop from /var/www/shop/current
#   symfony  Apache 2.4 with mod_php (Debian's own /etc/apache2 layout, bind-mounted per
#            host, started and reloaded by `service apache2`), PHP with production OPcache
#            settings, examples/knifedepot in /var/www/knifedepot, PostgreSQL for the farm
#   symfony-fpm  the same app on nginx in front of php-fpm (Debian's /etc/php/V/fpm per
#            host, `service phpV-fpm`)
#   django   nginx in front of Gunicorn, examples/djangodepot in /var/www/djangodepot,
#            PostgreSQL for the farm
#
# PostgreSQL (all but shop) is one server for the whole farm on 127.ID.0.3:5432.
# FARM_PROBE_INTERVAL: how often Varnish probes each app host (default 100ms; bench/scale.sh
# slows it for hundreds of hosts, whose probes would otherwise load the machine).
# Written for root on Debian with the packages scripts/install-deps installs.
set -euo pipefail

FARM_SH=$(readlink -f "$0")
cd /  # the caller's folder may go away while the farm runs
IDS=/tmp/deploy-farm-ids

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
  [ "$4" = 1 ] && "app_conf_${STACK//-/_}" "$name" "$addr" "$d"
  return 0
}

# The start of every app host's nginx.conf: one worker, its files in the host's folder.
nginx_head() { # dir
  local d=$1
  cat <<CONF
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
CONF
}

# shop: nginx serving the shell-script app's files.
app_conf_shop() { # name addr dir
  local name=$1 addr=$2 d=$3
  mkdir -p "$d/www/shop/shared/public/cache" "$d/www/shop/shared/var/log"
  { nginx_head "$d"; cat <<CONF
    default_type text/plain;
    types { text/html html; application/json json; }
    server {
        listen $addr:$APP_PORT reuseport;
        root $APP_PATH/current/public;
        add_header X-Host \$hostname always;
        add_header X-Release \$realpath_root always;
        add_header Cache-Control "max-age=300" always;
        # For the canary tests: a release with config/answer-500 answers 500 on every page
        # but /health; shared/answer-500 does it on a host whatever its release.
        location = / {
            if (-f \$document_root/../config/answer-500) { return 500; }
            if (-f $APP_PATH/shared/answer-500) { return 500; }
            try_files /cache/index.html /index.html =404;
        }
        location = /health { try_files /health.txt =404; }
        location = /cart { try_files /cart.json =404; }
        location / {
            if (-f \$document_root/../config/answer-500) { return 500; }
            if (-f $APP_PATH/shared/answer-500) { return 500; }
            try_files \$uri =404;
        }
    }
}
CONF
  } > "$d/nginx.conf"
  # What the app reads at run time (a shared file, like Symfony's .env.local).
  cat > "$d/www/shop/shared/.env.local" <<CONF
FARM_HOST=$name
NGINX_CONF=$d/nginx.conf
NGINX_PID=$d/nginx.pid
DB_DIR=$FARM/db
CONF
}

# symfony: Debian's Apache with mod_php, its own /etc/apache2 per host (bind-mounted in the
# host's namespace), so `service apache2 reload` on the host is Debian's own init script.
app_conf_symfony() { # name addr dir
  local name=$1 addr=$2 d=$3
  cp -a /etc/apache2 "$d/apache2"
  mkdir -p "$d/run/apache2" "$d/lock/apache2" "$d/log/apache2"
  rm -f "$d/apache2/sites-enabled/"*
  ln -sf ../mods-available/headers.load "$d/apache2/mods-enabled/headers.load"
  echo "Listen $addr:$APP_PORT" > "$d/apache2/ports.conf"
  cat > "$d/apache2/conf-enabled/zz-production-php.conf" <<'CONF'
# PHP as in production: OPcache never looks at a file again once compiled, and the realpath
# cache remembers where `current` pointed for 10 minutes. Only a reload makes PHP see a new
# release.
php_admin_flag opcache.validate_timestamps Off
php_admin_value opcache.memory_consumption 64
php_admin_value realpath_cache_size 4096K
php_admin_value realpath_cache_ttl 600
ServerName localhost
CONF
  cat > "$d/apache2/sites-enabled/$APP.conf" <<CONF
<VirtualHost $addr:$APP_PORT>
    ServerName $name
    DocumentRoot $APP_PATH/current/public
    <Directory $APP_PATH/current/public>
        AllowOverride None
        Require all granted
        FallbackResource /index.php
    </Directory>
    Header always set X-Host "$name"
    ErrorLog \${APACHE_LOG_DIR}/error.log
    LogLevel warn
</VirtualHost>
CONF
  symfony_shared "$d"
}

# What the Symfony app reads at run time on every host: its database, a log folder.
symfony_shared() { # dir
  local d=$1
  mkdir -p "$d/www/$APP/shared/var/log"
  chown www-data "$d/www/$APP/shared/var/log"
  cat > "$d/www/$APP/shared/.env.local" <<CONF
DATABASE_URL=postgresql://$DB_USER:$DB_PASS@$DB_ADDR:5432/$DB_NAME?serverVersion=15&charset=utf8
CONF
}

# symfony-fpm: nginx in front of Debian's php-fpm, its own /etc/php/V/fpm and /run/php per
# host (bind-mounted), so `service phpV-fpm reload` on the host is Debian's own init script.
# SCRIPT_FILENAME goes through `current` ($document_root), as with Apache: PHP must be told.
app_conf_symfony_fpm() { # name addr dir
  local name=$1 addr=$2 d=$3
  cp -a "/etc/php/$PHPV/fpm" "$d/php-fpm"
  mkdir -p "$d/run/php"
  sed -i "s|^error_log = .*|error_log = $d/log/php-fpm.log|" "$d/php-fpm/php-fpm.conf"
  # A reload (SIGUSR2) lets the workers finish their request; with Debian's default (0) it
  # kills them at once, and a request in flight gets a 502.
  sed -i 's|^\[global\]$|[global]\nprocess_control_timeout = 20s|' "$d/php-fpm/php-fpm.conf"
  cat >> "$d/php-fpm/pool.d/www.conf" <<CONF

; The farm: nginx's workers (nobody) may use the socket; PHP as in production (OPcache never
; looks at a file again once compiled; the realpath cache keeps where current pointed).
listen.mode = 0666
php_admin_flag[opcache.validate_timestamps] = off
php_admin_value[opcache.memory_consumption] = 64
php_admin_value[realpath_cache_size] = 4096K
php_admin_value[realpath_cache_ttl] = 600
CONF
  { nginx_head "$d"; cat <<CONF
    default_type text/plain;
    server {
        listen $addr:$APP_PORT reuseport;
        root $APP_PATH/current/public;
        add_header X-Host $name always;
        location / { try_files \$uri /index.php\$is_args\$args; }
        location ~ ^/index\.php(/|\$) {
            fastcgi_pass unix:/run/php/php$PHPV-fpm.sock;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_param DOCUMENT_ROOT \$document_root;
            internal;
        }
        location ~ \.php\$ { return 404; }
    }
}
CONF
  } > "$d/nginx.conf"
  symfony_shared "$d"
}

# django: nginx on the host's address in front of Gunicorn on a socket; Gunicorn is a
# service started, reloaded (SIGHUP) and stopped by /var/www/.farm/gunicorn.
app_conf_django() { # name addr dir
  local name=$1 addr=$2 d=$3
  mkdir -p "$d/www/.farm" "$d/www/$APP/shared/media"
  { nginx_head "$d"; cat <<CONF
    default_type application/octet-stream;
    types { text/css css; text/html html; }
    server {
        listen $addr:$APP_PORT reuseport;
        add_header X-Host $name always;
        location /static/ { alias $APP_PATH/current/staticfiles/; }
        location / {
            proxy_pass http://unix:/var/www/.farm/gunicorn.sock;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
  } > "$d/nginx.conf"
  cat > "$d/www/.farm/gunicorn" <<'SH'
#!/bin/sh
# Gunicorn as a service on this host: start | reload | stop. `reload` is SIGHUP (new workers
# on the code `current` points to now, the old ones finish their requests), and returns once
# every old worker has exited, so the host serves only the new release when it is put back.
set -eu
run=/var/www/.farm
pidf=$run/gunicorn.pid
running() { [ -s "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }
workers() { pgrep -P "$(cat "$pidf")" | sort; }
case "${1:-}" in
  start)
    running && exit 0
    cd @APP_PATH@/current
    exec /usr/bin/gunicorn --daemon --chdir @APP_PATH@/current --pythonpath @APP_PATH@/current \
      --bind unix:$run/gunicorn.sock --workers 2 --graceful-timeout 20 --pid "$pidf" \
      --error-logfile $run/gunicorn.log depot.wsgi ;;
  reload)
    if ! running; then exec "$0" start; fi
    old=$(workers)
    kill -HUP "$(cat "$pidf")"
    i=0
    while [ $i -lt 300 ]; do
      left=0
      for w in $old; do kill -0 "$w" 2>/dev/null && left=1; done
      [ $left = 0 ] && [ -n "$(workers)" ] && exit 0
      sleep 0.1; i=$((i + 1))
    done
    echo "gunicorn: old workers still running after 30 s" >&2; exit 1 ;;
  stop) running && kill -TERM "$(cat "$pidf")"; exit 0 ;;
  *) echo "usage: $0 start|reload|stop" >&2; exit 2 ;;
esac
SH
  sed -i "s|@APP_PATH@|$APP_PATH|g" "$d/www/.farm/gunicorn"
  chmod 755 "$d/www/.farm/gunicorn"
  cat > "$d/www/$APP/shared/.env" <<CONF
DATABASE_URL=postgresql://$DB_USER:$DB_PASS@$DB_ADDR:5432/$DB_NAME
SECRET_KEY=farm-$FARM_ID-same-on-every-host
CONF
}

start_host() { # name addr dir app(0/1)
  local name=$1 addr=$2 d=$3 pid i mounts
  mounts="mount --bind '$d/www' /var/www && mount --bind '$d/root' /root"
  if [ "$4" = 1 ] && [ "$STACK" = symfony ]; then
    mounts+=" && mount --bind '$d/apache2' /etc/apache2 && mount --bind '$d/run/apache2' /run/apache2"
    mounts+=" && mount --bind '$d/lock/apache2' /run/lock/apache2 && mount --bind '$d/log/apache2' /var/log/apache2"
  fi
  if [ "$4" = 1 ] && [ "$STACK" = symfony-fpm ]; then
    mounts+=" && mount --bind '$d/php-fpm' /etc/php/$PHPV/fpm && mount --bind '$d/run/php' /run/php"
  fi
  setsid unshare --mount --uts --propagation private -- sh -c \
    "$mounts && hostname '$name' && exec sleep infinity" \
    </dev/null >/dev/null 2>&1 &
  pid=$!
  echo "$pid" > "$FARM/pids/ns-$name"
  for ((i = 0; i < 250; i++)); do
    [ "$(nsenter -t "$pid" -u hostname 2>/dev/null)" = "$name" ] && break
    sleep 0.02
  done
  [ "$(nsenter -t "$pid" -u hostname 2>/dev/null)" = "$name" ] || die "namespace for $name did not come up"
  nsenter -t "$pid" -m -u -- /usr/sbin/sshd -f "$d/sshd_config"
  [ "$4" = 1 ] || return 0
  case $STACK in
    shop|django) nsenter -t "$pid" -m -u -- nginx -c "$d/nginx.conf" </dev/null >/dev/null 2>&1 ;;
    symfony)
      # Debian's init script can say "failed" and exit 0: its pid file is the proof.
      nsenter -t "$pid" -m -u -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin service apache2 start \
        </dev/null >"$d/log/apache2-start.log" 2>&1 && [ -s "$d/run/apache2/apache2.pid" ] \
        || { cat "$d/log/apache2-start.log" >&2; die "apache2 of $name did not start"; } ;;
    symfony-fpm)
      nsenter -t "$pid" -m -u -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin service "php$PHPV-fpm" start \
        </dev/null >"$d/log/php-fpm-start.log" 2>&1 && [ -s "$d/run/php/php$PHPV-fpm.pid" ] \
        || { cat "$d/log/php-fpm-start.log" >&2; die "php-fpm of $name did not start"; }
      nsenter -t "$pid" -m -u -- nginx -c "$d/nginx.conf" </dev/null >/dev/null 2>&1 ;;
  esac
}

# The farm's database server: one PostgreSQL for every app host, on 127.ID.0.3:5432, its
# data under the farm id's folder (the postgres user must reach it).
start_db() {
  local bin data
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$bin/postgres" ] || die "missing PostgreSQL (scripts/install-deps installs postgresql)"
  data=$IDS/$FARM_ID/pg
  rm -rf "$data"; mkdir -p "$data"; chown postgres: "$data"; chmod 700 "$data"
  runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 >"$FARM/postgres-init.log" 2>&1 \
    || { cat "$FARM/postgres-init.log" >&2; die "initdb failed"; }
  echo "host all all 127.0.0.0/8 scram-sha-256" >> "$data/pg_hba.conf"
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/postgres.log" -w -t 30 \
    -o "-c listen_addresses=$DB_ADDR -c port=5432 -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=200" \
    start >/dev/null || { cat "$data/postgres.log" >&2; die "postgres did not start"; }
  head -1 "$data/postmaster.pid" > "$FARM/pids/postgres"
  runuser -u postgres -- psql -h "$data" -U postgres -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASS'" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null \
    || die "could not create the farm's database"
}

up() {
  FARM=$(readlink -f "$1"); local n=${2:-4}
  STACK=${3:-shop}
  case $STACK in
    shop) APP=shop; APP_PORT=8080 ;;
    symfony|symfony-fpm) APP=knifedepot; APP_PORT=80 ;;
    django) APP=djangodepot; APP_PORT=80 ;;
    *) die "unknown stack $STACK (shop, symfony, symfony-fpm or django)" ;;
  esac
  PHPV=$(php -r 'echo PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION;' 2>/dev/null || true)
  APP_PATH=/var/www/$APP
  [ -d "$FARM" ] || mkdir -p "$FARM"
  [ -e "$FARM/pids" ] && die "$FARM already holds a farm (farm.sh down $FARM first)"
  local tools=(/usr/sbin/sshd nginx varnishd varnishadm haproxy socat unshare nsenter ssh ssh-keygen)
  case $STACK in
    symfony) tools+=(apache2ctl php psql runuser) ;;
    symfony-fpm) tools+=(php "php-fpm$PHPV" psql runuser) ;;
    django) tools+=(/usr/bin/gunicorn psql runuser) ;;
  esac
  for t in "${tools[@]}"; do
    command -v "$t" >/dev/null || die "missing $t (scripts/install-deps installs the farm's Debian packages)"
  done
  mkdir -p "$FARM/pids" "$FARM/db" /var/www /run/sshd /run/apache2 /run/lock/apache2 /var/log/apache2 /run/php
  chmod 755 "$FARM"
  # A farm that fails half-way stops what it started.
  trap 'echo "farm: stopping the half-started farm" >&2; down "$FARM" >/dev/null 2>&1' EXIT
  local id; id=$(claim_id "$FARM")
  echo "$id" > "$FARM/id"
  FARM_ID=$id
  local lb=127.$id.0.2
  DB_ADDR=127.$id.0.3 DB_USER=$APP DB_PASS=farm-db-$id DB_NAME=$APP
  ssh-keygen -q -t ed25519 -N '' -C farm -f "$FARM/id_ed25519"
  cp "$FARM/id_ed25519.pub" "$FARM/authorized_keys"
  : > "$FARM/known_hosts"

  local names=(lb) addrs=("$lb") i
  # web1..web244 on 127.ID.0.11-254, then 127.ID.1.1 on (bench/scale.sh goes to 256 hosts).
  for ((i = 1; i <= n; i++)); do
    names+=("web$i")
    if [ $((10 + i)) -le 254 ]; then addrs+=("127.$id.0.$((10 + i))"); else addrs+=("127.$id.1.$((i - 244))"); fi
  done
  for ((i = 0; i <= n; i++)); do
    host_conf "${names[$i]}" "${addrs[$i]}" "$FARM/hosts/${names[$i]}" "$((i > 0))"
  done

  cat > "$FARM/ssh_config" <<CONF
Host 127.$id.*
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
    echo "probe health { .url = \"/health\"; .interval = ${FARM_PROBE_INTERVAL:-100ms}; .timeout = 1s; .window = 3; .threshold = 2; .initial = 3; }"
    for ((i = 1; i <= n; i++)); do
      echo "backend web$i { .host = \"${addrs[$i]}\"; .port = \"$APP_PORT\"; .probe = health; .connect_timeout = 1s; }"
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
    # Writes, carts and anything in a session (the shop's cart cookie, Symfony's PHPSESSID,
    # Django's sessionid) are never cached: always a backend request.
    if (req.method != "GET" && req.method != "HEAD") { return (pass); }
    if (req.url ~ "^/cart" || req.http.Cookie ~ "(^|;\s*)(cart|PHPSESSID|sessionid)=") { return (pass); }
    unset req.http.Cookie;
    return (hash);
}
sub vcl_backend_response { set beresp.ttl = 300s; set beresp.grace = 0s; }
sub vcl_deliver {
    if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; }
}
VCL
  } > "$FARM/default.vcl"

  # HAProxy's 503 page, with Retry-After: what `deploy maintenance on farm-haproxy` shows.
  printf 'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\nCache-Control: no-store\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n<!doctype html><title>Maintenance</title><p>Down for maintenance: back soon.</p>\n' > "$FARM/maintenance.http"

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
    # The page deploy maintenance on shows (docs/balancers.md#maintenance).
    errorfile 503 $FARM/maintenance.http
frontend shop
    bind $lb:8081
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /health
CONF
    for ((i = 1; i <= n; i++)); do
      echo "    server web$i ${addrs[$i]}:$APP_PORT check inter 100ms fall 2 rise 2"
    done
  } > "$FARM/haproxy.cfg"

  [ "$STACK" = shop ] || start_db
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
    [ "$i" -gt 0 ] && { wait_port "${addrs[$i]}" "$APP_PORT" 10 || die "the web server of ${names[$i]} does not answer"; }
  done
  wait_port "$lb" 6082 10 || die "varnish admin does not answer on $lb:6082"
  wait_port "$lb" 8081 10 || die "haproxy does not answer on $lb:8081"

  example_app "$id" "${names[*]:1}" "${addrs[*]:1}"
  local urls="" a
  for a in "${addrs[@]:1}"; do
    if [ "$APP_PORT" = 80 ]; then urls+="${urls:+ }http://$a"; else urls+="${urls:+ }http://$a:$APP_PORT"; fi
  done
  {
    echo "FARM=$FARM"
    echo "FARM_ID=$id"
    echo "FARM_STACK=$STACK"
    echo "FARM_APP=$APP"
    echo "FARM_APP_PATH=$APP_PATH"
    echo "FARM_REPO=$FARM/$APP"
    echo "FARM_LB=$lb"
    echo "FARM_VARNISH=http://$lb:6081"
    echo "FARM_HAPROXY=http://$lb:8081"
    echo "FARM_APP_HOSTS=\"${names[*]:1}\""
    echo "FARM_APP_ADDRS=\"${addrs[*]:1}\""
    echo "FARM_APP_URLS=\"$urls\""
    if [ "$STACK" != shop ]; then
      echo "FARM_DB_ADDR=$DB_ADDR"
      echo "FARM_DB_URL=postgresql://$DB_USER:$DB_PASS@$DB_ADDR:5432/$DB_NAME"
    fi
  } > "$FARM/farm.env"
  trap - EXIT
  echo "$FARM"
}

# The stages every example app gets on this farm: `farm` (Varnish) and `farm-haproxy`.
stages_toml() { # "hosts lines" lb
  local hosts=$1 lb=$2
  cat <<CONF
[stages.farm]
site = "farm"                      # the same site as farm-haproxy, behind Varnish
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
bans = ["req.url ~ ."]

[stages.farm-haproxy]
site = "farm"                      # the same site as farm, behind HAProxy
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

# The example app as a git repository (FARM/APP) and a Deploy.toml for this farm, with a
# stage per balancer: `farm` (Varnish) and `farm-haproxy`. The shop's Deploy.toml is
# FARM/Deploy.toml; the real apps' is committed in their repository, as a team's would be.
example_app() { # id "names" "addrs"
  local id=$1 lb=127.$1.0.2 src
  src=$(dirname "$FARM_SH")/../../examples/$APP
  [ -d "$src" ] || die "example app not found at $src"
  rm -rf "${FARM:?}/$APP"
  cp -a "$src" "$FARM/$APP"
  rm -rf "$FARM/$APP/var" "$FARM/$APP/staticfiles" "$FARM/$APP/.env.local"
  find "$FARM/$APP" -name __pycache__ -prune -exec rm -rf {} +
  git -C "$FARM/$APP" init -q -b main
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
  case $STACK in
    shop) shop_toml "$hosts" "$lb" > "$FARM/Deploy.toml" ;;
    symfony) symfony_toml "$hosts" "$lb" apache2 > "$FARM/$APP/Deploy.toml" ;;
    symfony-fpm) symfony_toml "$hosts" "$lb" "php$PHPV-fpm" "php-fpm$PHPV" > "$FARM/$APP/Deploy.toml" ;;
    django) django_toml "$hosts" "$lb" > "$FARM/$APP/Deploy.toml" ;;
  esac
  git -C "$FARM/$APP" add -A
  git -C "$FARM/$APP" -c user.name=farm -c user.email=farm@localhost -c commit.gpgsign=false commit -q -m "$APP: first release"
}

shop_toml() { # hosts lb
  cat <<CONF
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

CONF
  stages_toml "$1" "$2"
}

# The Symfony app: the recipe, the path and the service name; the rest is the farm's.
symfony_toml() { # hosts lb php_service [php_process]
  cat <<CONF
# Deploy.toml of knifedepot for the local farm in $FARM (written by tests/farm/farm.sh).

[app]
name = "knifedepot"
recipe = "symfony"
path = "$APP_PATH"

[vars]
php_service = "$3"
$([ -n "${4:-}" ] && echo "php_process = \"$4\"            # Debian names php-fpm's processes differently from its service")

[hooks]
# DoctrineMigrationsBundle is not packaged by Debian: the app has its own command.
migrate = "php bin/console app:migrate"

[ssh]
config = "$FARM/ssh_config"

CONF
  stages_toml "$1" "$2"
}

# The Django app: the recipe, the path, Python and how Gunicorn is reloaded on these hosts.
django_toml() { # hosts lb
  cat <<CONF
# Deploy.toml of djangodepot for the local farm in $FARM (written by tests/farm/farm.sh).

[app]
name = "djangodepot"
recipe = "django"
path = "$APP_PATH"

[vars]
python = "/usr/bin/python3"        # Debian's, which has Django
reload = "/var/www/.farm/gunicorn reload"   # Gunicorn is not a system service on the farm

[ssh]
config = "$FARM/ssh_config"

CONF
  stages_toml "$1" "$2"
}

down() {
  local farm; farm=$(readlink -f "$1")
  [ -d "$farm/pids" ] || return 0
  local f pid ns p
  # Every process inside a host's namespaces (sshd sessions, nginx restarted by hooks…): one
  # pass over /proc finds them for every host at once (a pass per host took minutes at 256).
  local holders=" " spaces=" " round found
  for f in "$farm"/pids/ns-*; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    alive "$pid" || continue
    ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || continue
    holders+="$pid "
    spaces+="$ns "
  done
  # Again until a pass finds none: a server killed mid-restart (Apache's graceful, php-fpm's
  # reload) may have forked a worker after the pass went by it, which would outlive the farm.
  for round in $(seq 50); do
    [ "$spaces" = " " ] && break
    found=0
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      case $holders in *" $p "*) continue ;; esac
      ns=$(readlink "/proc/$p/ns/mnt" 2>/dev/null) || continue
      case $spaces in
        *" $ns "*) if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; found=1; fi ;;
      esac
    done
    [ "$found" = 0 ] && break
    sleep 0.02
  done
  for pid in $holders; do kill -KILL "$pid" 2>/dev/null || true; done
  for f in "$farm"/pids/varnishd "$farm"/pids/haproxy; do
    [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  # PostgreSQL: a fast shutdown (SIGINT) does not wait for clients.
  [ -e "$farm/pids/postgres" ] && kill -INT "$(cat "$farm/pids/postgres")" 2>/dev/null || true
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
