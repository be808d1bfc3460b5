#!/usr/bin/env bash
# Make sure Redis (and, unless only `redis` is asked for, PostgreSQL) answer on localhost.
# Uses what is already running; starts a stopped local server otherwise.
set -uo pipefail
want="${1:-all}"
redis_url="${REDIS_URL:-redis://127.0.0.1:6379/0}"

redis_up() { redis-cli -u "$redis_url" ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  command -v redis-server >/dev/null || .ci/system-packages.sh
  mkdir -p var/redis
  echo "starting a private redis-server on 127.0.0.1:6379 (data in var/redis)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "error: Redis does not answer at $redis_url" >&2; exit 1; }
fi
[ "$want" = redis ] && exit 0

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 50); do pg_up && break; sleep 0.2; done
  fi
  pg_up || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; PostgreSQL tests will be skipped" >&2
fi
exit 0
