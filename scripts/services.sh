#!/usr/bin/env bash
# Start the local services the test suite talks to, when they are not running yet.
# Commands follow the machine's own service set-up (Debian packages, started without systemd).
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 50); do
    port_open "$port" && return 0
    sleep 0.2
  done
  echo "services: $name did not come up on port $port" >&2
  return 1
}

if ! port_open 5432; then
  echo "services: starting PostgreSQL"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  wait_port 5432 PostgreSQL
fi
echo "services: PostgreSQL up on 127.0.0.1:5432"

if ! port_open 1883; then
  echo "services: starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  wait_port 1883 Mosquitto
fi
echo "services: Mosquitto up on 127.0.0.1:1883"
