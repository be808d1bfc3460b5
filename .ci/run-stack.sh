#!/usr/bin/env bash
# `make run`: the whole system on one machine. Redis (the one at REDIS_URL, or a private one),
# migrations on the SQLite default, one worker on both queues, the web server on port 8000,
# a ready API token. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export PORT="${PORT:-8000}"
mkdir -p var/log

.ci/services.sh redis

if [ -z "${ANYCOST_MODEL:-}" ]; then
  if $PY -m worker.anycost.weights installed anycost-ffhq-config-f >/dev/null 2>&1; then
    export ANYCOST_MODEL=anycost-ffhq-config-f
  else
    export ANYCOST_MODEL=tiny-random
  fi
fi
if [ "$ANYCOST_MODEL" = tiny-random ]; then
  cat <<'BANNER'
#####################################################################################
#  NO PRETRAINED WEIGHTS INSTALLED: running on `tiny-random` (random weights, 64 px). #
#  Edits will not look like faces. Install the real weights with                     #
#    .venv/bin/python -m worker.anycost.weights fetch anycost-ffhq-config-f          #
#  (or `import anycost-ffhq-config-f FILE...` for files you already have).           #
#####################################################################################
BANNER
fi

echo "migrating the database (${DATABASE_URL:-SQLite var/anycost.db})"
$PY -m shared.store.migrate upgrade

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM

$PY -m celery -A worker.process.celery_app worker -Q preview,final -c 1 -n "worker1@%h" \
  --loglevel INFO >var/log/worker.log 2>&1 &
pids+=($!)
$PY -m worker.process.reaper >var/log/reaper.log 2>&1 &
pids+=($!)
.venv/bin/flask --app web run --host 127.0.0.1 --port "$PORT" >var/log/web.log 2>&1 &
pids+=($!)

user="demo-$(date +%s)"
token=$(.venv/bin/flask --app web create-user "$user" --password demo-password | tail -n 1)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

cat <<MSG

Anycost batch editor is running (model: $ANYCOST_MODEL).
  Portal:   http://127.0.0.1:$PORT/   (user: $user, password: demo-password)
  API token: $token
  Try:
    curl -H "Authorization: Bearer $token" -F files=@photo.jpg \\
         -F 'recipe={"edits": {"smiling": 0.6}}' http://127.0.0.1:$PORT/api/v1/batches
  Logs: var/log/{web,worker,reaper}.log   Stop: Ctrl-C
MSG
wait
