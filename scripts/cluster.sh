#!/usr/bin/env bash
# The scale-out shape on one machine: PostgreSQL and Redis (scripts/services.sh), moto's S3
# server with a bucket, 2 API processes (`vidrelay serve`, engine off) on their own ports and
# 2 `vidrelay worker`s, all on one database URL, one Redis URL and one media store.
#
#   bash scripts/cluster.sh start    # starts whatever is not running (so it also restarts a dead one)
#   bash scripts/cluster.sh status   # one line per process; exit 0 only when all run
#   bash scripts/cluster.sh stop     # SIGTERM, wait, exit 0 with none of them left running
#
# Pid files, logs and the shared settings (`env`, KEY=VALUE lines a CLI command can source)
# live in CLUSTER_DIR (./cluster-run). Every other VIDRELAY_* variable of the caller
# (VIDRELAY_CONFIG, poll intervals, ...) reaches every process. PostgreSQL and Redis are
# shared with the test suite and stay up after `stop`.
#
# Settings, read on the first `start` of a run dir and kept in its `env` from then on:
#   CLUSTER_API_PORTS ("8001 8002"), CLUSTER_WORKER_METRICS_PORTS ("9101 9102": one worker
#   each), CLUSTER_S3_PORT (9000), CLUSTER_DATABASE (vidrelay_cluster, created on the suite's
#   PostgreSQL unless VIDRELAY_DATABASE_URL is given), CLUSTER_REDIS_DB (1, unless
#   VIDRELAY_REDIS_URL is given), CLUSTER_MEDIA (s3, the default: every process has its own
#   data directory, as on separate hosts; dir: one media directory all four processes share).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=$(mkdir -p "${CLUSTER_DIR:-$PWD/cluster-run}" && cd "${CLUSTER_DIR:-$PWD/cluster-run}" && pwd)
PYTHON=${PYTHON:-python3}
STOP_TIMEOUT_S=${CLUSTER_STOP_TIMEOUT_S:-30}
S3_BUCKET=vidrelay

usage() {
  echo "usage: $0 start|stop|status" >&2
  exit 2
}

vidrelay() { "$PYTHON" -m vidrelay.cli "$@"; }

running() { # pidfile: true when its process is alive
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for_url() { # url pidfile log: until the url answers 200, or fail with the log's tail
  for _ in $(seq 1 600); do
    if ! running "$2"; then
      echo "cluster: $(basename "$2" .pid) exited; the end of $3:" >&2
      tail -n 20 "$3" >&2
      return 1
    fi
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster: $1 did not answer within 60 s; the end of $3:" >&2
  tail -n 20 "$3" >&2
  return 1
}

launch() { # name command...: in a session of its own (its children stop with it)
  local name=$1
  shift
  setsid "$@" >>"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

media_mode() {
  local mode=${CLUSTER_MEDIA:-s3}
  case $mode in s3 | dir) echo "$mode" ;; *)
    echo "cluster: CLUSTER_MEDIA must be s3 or dir (got $mode)" >&2
    return 2
    ;;
  esac
}

write_env() { # the settings every process of this run dir shares, chosen once
  local services database_url redis_url s3_port media
  # shellcheck disable=SC1091  # services.sh sets -e: sourced in a subshell, never here
  services=$(cd "$ROOT" && source scripts/services.sh >&2 && echo "$VIDRELAY_TEST_POSTGRES_URL $VIDRELAY_TEST_REDIS_URL")
  database_url=${VIDRELAY_DATABASE_URL:-}
  if [ -z "$database_url" ]; then
    local admin_url=${services%% *} name=${CLUSTER_DATABASE:-vidrelay_cluster}
    local port
    port=$(sed -E 's#.*:([0-9]+)/[^/]*$#\1#' <<<"$admin_url")
    if ! PGPASSWORD=vidrelay_test psql -qtA -h 127.0.0.1 -p "$port" -U vidrelay_test -d vidrelay_test \
      -c "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
      PGPASSWORD=vidrelay_test psql -q -h 127.0.0.1 -p "$port" -U vidrelay_test -d vidrelay_test \
        -c "CREATE DATABASE \"$name\""
    fi
    database_url=${admin_url%/*}/$name
  fi
  redis_url=${VIDRELAY_REDIS_URL:-${services#* }}
  [ -n "${VIDRELAY_REDIS_URL:-}" ] || redis_url=${redis_url%/*}/${CLUSTER_REDIS_DB:-1}
  s3_port=${CLUSTER_S3_PORT:-9000}
  media=$(media_mode)
  {
    echo "VIDRELAY_DATABASE_URL=$database_url"
    echo "VIDRELAY_REDIS_URL=$redis_url"
    echo "VIDRELAY_S3_ENDPOINT_URL=http://127.0.0.1:$s3_port"
    echo "AWS_ACCESS_KEY_ID=cluster"
    echo "AWS_SECRET_ACCESS_KEY=cluster"
    echo "AWS_REGION=us-east-1"
    if [ "$media" = s3 ]; then
      echo "VIDRELAY_MEDIA_URL=s3://$S3_BUCKET/media"
    fi
    echo "VIDRELAY_DATA_DIR=$RUN_DIR/data"
    echo "CLUSTER_MEDIA=$media"
    echo "CLUSTER_S3_PORT=$s3_port"
    echo "CLUSTER_API_PORTS=\"${CLUSTER_API_PORTS:-8001 8002}\""
    echo "CLUSTER_WORKER_METRICS_PORTS=\"${CLUSTER_WORKER_METRICS_PORTS:-9101 9102}\""
  } >"$RUN_DIR/env.new"
  mv "$RUN_DIR/env.new" "$RUN_DIR/env"
}

load_env() {
  set -a
  # shellcheck disable=SC1091
  source "$RUN_DIR/env"
  set +a
  export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
  read -r -a API_PORTS <<<"$CLUSTER_API_PORTS"
  read -r -a WORKER_PORTS <<<"$CLUSTER_WORKER_METRICS_PORTS"
}

data_dir_of() { # name: in S3 mode each process has a disk of its own, as on its own host
  if [ "$CLUSTER_MEDIA" = s3 ]; then echo "$RUN_DIR/data-$1"; else echo "$RUN_DIR/data"; fi
}

start() {
  if [ -f "$RUN_DIR/env" ]; then
    # shellcheck disable=SC1091  # up again after a reboot; -e stays in the subshell
    (cd "$ROOT" && source scripts/services.sh >/dev/null)
  else
    write_env
  fi
  load_env
  if ! running "$RUN_DIR/s3.pid"; then
    launch s3 "$PYTHON" -m moto.server -H 127.0.0.1 -p "$CLUSTER_S3_PORT"
    wait_for_url "$VIDRELAY_S3_ENDPOINT_URL/moto-api/" "$RUN_DIR/s3.pid" "$RUN_DIR/s3.log"
  fi
  # moto keeps buckets in memory: make it whenever it is missing (a restarted moto)
  curl -fsS -o /dev/null -X PUT "$VIDRELAY_S3_ENDPOINT_URL/$S3_BUCKET" \
    || curl -fsS -o /dev/null "$VIDRELAY_S3_ENDPOINT_URL/$S3_BUCKET"
  VIDRELAY_DATA_DIR=$(data_dir_of migrations) vidrelay db upgrade >>"$RUN_DIR/migrations.log" 2>&1 \
    || { tail -n 20 "$RUN_DIR/migrations.log" >&2; return 1; }
  local index port name
  for index in "${!API_PORTS[@]}"; do
    name=api-$((index + 1))
    port=${API_PORTS[$index]}
    if ! running "$RUN_DIR/$name.pid"; then
      VIDRELAY_ENGINE=false VIDRELAY_DATA_DIR=$(data_dir_of "$name") \
        launch "$name" "$PYTHON" -m vidrelay.cli serve --host 127.0.0.1 --port "$port"
    fi
  done
  for index in "${!WORKER_PORTS[@]}"; do
    name=worker-$((index + 1))
    port=${WORKER_PORTS[$index]}
    if ! running "$RUN_DIR/$name.pid"; then
      # webhooks link to API 1 unless the caller names the address clients use (a balancer)
      VIDRELAY_ENGINE=true VIDRELAY_METRICS_PORT=$port VIDRELAY_DATA_DIR=$(data_dir_of "$name") \
        VIDRELAY_PUBLIC_URL=${VIDRELAY_PUBLIC_URL:-http://127.0.0.1:${API_PORTS[0]}} \
        launch "$name" "$PYTHON" -m vidrelay.cli worker
    fi
  done
  for index in "${!API_PORTS[@]}"; do
    name=api-$((index + 1))
    wait_for_url "http://127.0.0.1:${API_PORTS[$index]}/healthz" "$RUN_DIR/$name.pid" "$RUN_DIR/$name.log"
  done
  for index in "${!WORKER_PORTS[@]}"; do
    name=worker-$((index + 1))
    wait_for_url "http://127.0.0.1:${WORKER_PORTS[$index]}/metrics" "$RUN_DIR/$name.pid" "$RUN_DIR/$name.log"
  done
  status
}

processes() { # name url, in stopping order: workers, then API processes, then S3
  local index
  for index in "${!WORKER_PORTS[@]}"; do
    echo "worker-$((index + 1)) http://127.0.0.1:${WORKER_PORTS[$index]}/metrics"
  done
  for index in "${!API_PORTS[@]}"; do
    echo "api-$((index + 1)) http://127.0.0.1:${API_PORTS[$index]}"
  done
  echo "s3 $VIDRELAY_S3_ENDPOINT_URL/$S3_BUCKET"
}

status() {
  [ -f "$RUN_DIR/env" ] || { echo "cluster: nothing started in $RUN_DIR"; return 3; }
  load_env
  local name url all=0
  while read -r name url; do
    if running "$RUN_DIR/$name.pid"; then
      printf '%-9s running  pid %-8s %s\n' "$name" "$(cat "$RUN_DIR/$name.pid")" "$url"
    else
      printf '%-9s stopped\n' "$name"
      all=3
    fi
  done < <(processes)
  echo "database: $(sed -E 's#//([^:]*):[^@]*@#//\1:***@#' <<<"$VIDRELAY_DATABASE_URL"); redis: $VIDRELAY_REDIS_URL; media: ${VIDRELAY_MEDIA_URL:-$RUN_DIR/data/media}"
  return $all
}

stop() {
  [ -f "$RUN_DIR/env" ] || return 0
  load_env
  local name _url pid forced=""
  local -a stopping=()
  while read -r name _url; do
    running "$RUN_DIR/$name.pid" || { rm -f "$RUN_DIR/$name.pid"; continue; }
    kill -TERM "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || true
    stopping+=("$name")
  done < <(processes)
  for _ in $(seq 1 $((STOP_TIMEOUT_S * 10))); do
    local left=0
    for name in "${stopping[@]}"; do running "$RUN_DIR/$name.pid" && left=1; done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for name in "${stopping[@]}"; do
    pid=$(cat "$RUN_DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      echo "cluster: $name (pid $pid) did not stop within ${STOP_TIMEOUT_S} s: killed" >&2
      forced=1
    fi
    # whatever is left of its session (render workers), then the pid file
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$RUN_DIR/$name.pid"
  done
  [ -z "$forced" ]
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
