#!/usr/bin/env bash
# Starts an S3-compatible object store on loopback for Berth's S3 blob store and its tests: Ceph's radosgw
# on a one-node cluster (one monitor, one OSD on a sparse file-backed BlueStore, no manager, auth none
# between the daemons, which listen on 127.0.0.1 only). S3 requests are signed with a generated key.
#
#   scripts/start-s3.sh          start (or find running) and print the endpoint and keys as shell exports
#   scripts/start-s3.sh stop     stop the daemons of that directory (the data stays)
#
# Idempotent: a second start finds the running gateway and prints the same values; after a stop (or a
# reboot) it starts the daemons again on the data already there.
# Environment: BERTH_S3_DIR (data, default ~/.local/share/berth-s3), BERTH_S3_PORT (the S3 endpoint's
# port, default 17480), BERTH_S3_MON_PORT (the monitor's, default 16789), BERTH_S3_START_TIMEOUT (seconds
# to wait for the gateway, default 120). Packages: ceph-mon ceph-osd radosgw (scripts/install.sh).
set -euo pipefail

DIR=${BERTH_S3_DIR:-$HOME/.local/share/berth-s3}
RGW_PORT=${BERTH_S3_PORT:-17480}
MON_PORT=${BERTH_S3_MON_PORT:-16789}
TIMEOUT=${BERTH_S3_START_TIMEOUT:-120}
CONF=$DIR/ceph.conf
ENVF=$DIR/s3.env

die() { echo "start-s3: $*" >&2; exit 1; }

stop_daemons() {
  for name in client.rgw.berth osd.0 mon.a; do
    local pidf=$DIR/run/$name.pid
    [ -f "$pidf" ] || continue
    local pid; pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidf"
  done
}

running() { # name
  local pidf=$DIR/run/$1.pid
  [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null
}

print_env() {
  cat "$ENVF"
}

if [ "${1:-}" = stop ]; then
  [ -d "$DIR" ] && stop_daemons
  exit 0
fi
[ -z "${1:-}" ] || die "unknown argument '$1' (use no argument to start, or 'stop')"

for cmd in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph uuidgen curl; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd is not installed (apt-get install ceph-mon ceph-osd radosgw uuid-runtime curl, or run scripts/install.sh)"
done

endpoint=http://127.0.0.1:$RGW_PORT
if [ -f "$ENVF" ] && running client.rgw.berth && curl -s -o /dev/null --max-time 5 "$endpoint/"; then
  print_env
  exit 0
fi

mkdir -p "$DIR"/{run,log,mon,osd,rgw}
chmod 700 "$DIR"

if [ ! -f "$CONF" ]; then
  fsid=$(uuidgen)
  cat > "$CONF.tmp" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon data = $DIR/mon/\$name
osd data = $DIR/osd/\$name
# One monitor's disk check, against the data directory's filesystem: warn and stop only when it is nearly full.
mon data avail warn = 2
mon data avail crit = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon allow pool delete = true
osd pool default size = 1
osd pool default min size = 1
# radosgw creates about eight pools; the default 32 PGs each would pass the 250-per-OSD limit.
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = bluestore
bluestore block create = true
# A sparse file: it takes only what is written.
bluestore block size = 17179869184
bluestore cache size = 134217728
osd memory target = 939524096

[client.rgw.berth]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw
# radosgw asks for "secure" monitor connections by default, which auth none cannot give.
ms mon client mode = crc
EOF
  mv "$CONF.tmp" "$CONF"
fi

if [ ! -f "$DIR/mon/mon.a/done" ]; then
  rm -rf "$DIR/mon/mon.a" "$DIR/monmap"
  fsid=$(sed -n 's/^fsid = //p' "$CONF")
  monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap"
  touch "$DIR/mon/mon.a/done"
fi
running mon.a || ceph-mon -c "$CONF" -i a

if [ ! -f "$DIR/osd/osd.0/mkfs_done" ]; then
  rm -rf "$DIR/osd/osd.0"
  mkdir -p "$DIR/osd/osd.0"
  osd_uuid=$(uuidgen)
  id=$(timeout 60 ceph -c "$CONF" osd new "$osd_uuid")
  [ "$id" = 0 ] || die "the monitor gave OSD id $id, expected 0 (remove $DIR to start over)"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.log" 2>&1 \
    || die "ceph-osd --mkfs failed; see $DIR/log/osd-mkfs.log"
fi
running osd.0 || ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/osd-start.log"

running client.rgw.berth || radosgw -c "$CONF" -n client.rgw.berth

deadline=$(( $(date +%s) + TIMEOUT ))
until curl -s -o /dev/null --max-time 5 "$endpoint/"; do
  [ "$(date +%s)" -lt "$deadline" ] || die "radosgw did not answer on $endpoint within ${TIMEOUT}s; see $DIR/log/"
  sleep 0.5
done

if [ ! -f "$ENVF" ]; then
  access=$(head -c 15 /dev/urandom | base32 | tr -d '=' | head -c 20)
  secret=$(head -c 30 /dev/urandom | base64 | tr -d '=+/' | head -c 40)
  timeout 60 radosgw-admin -c "$CONF" user create --uid=berth --display-name=berth \
    --access-key="$access" --secret-key="$secret" >/dev/null 2>>"$DIR/log/radosgw-admin.log" \
    || die "radosgw-admin user create failed; see $DIR/log/radosgw-admin.log"
  umask 077
  cat > "$ENVF.tmp" <<EOF
export BERTH_S3_ENDPOINT=$endpoint
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
EOF
  mv "$ENVF.tmp" "$ENVF"
fi
print_env
