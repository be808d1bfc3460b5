#!/usr/bin/env bash
# `make run`: the whole system on one machine. Redis (the one at REDIS_URL, or a private one),
# migrations on the SQLite default, and these processes (logs in var/log/):
#   worker     renders previews and finals (queues preview, final) of the model it serves
#   evaluate   runs model evaluations (FID, PPL, consistency) on the `evaluate` queue, one at a time
#   reaper     requeues what a dead worker held, resends what the queue lost, deletes expired batches
#   webhooks   sends webhook deliveries (signed, retried with backoff)
#   web        the portal and the REST API on $PORT (default 8000), event streams included: the
#              Flask route, a thread per open stream (the compose file serves them from the
#              stream service, python -m web.streams, behind its proxy)
# It serves the installed real model when there is one (Anycost, then imported ones; set
# ANYCOST_MODEL to choose), else tiny-random, and prints a ready API token. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"  # the tests run it with their own interpreter
FLASK=("$PY" -m flask --app web)
LOG="${RUN_STACK_LOG_DIR:-var/log}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export PORT="${PORT:-8000}"
mkdir -p "$LOG"

.ci/services.sh redis

if [ -z "${ANYCOST_MODEL:-}" ]; then
  ANYCOST_MODEL=$("$PY" -m worker.anycost.weights.stack pick)
  export ANYCOST_MODEL
fi
if [ "$ANYCOST_MODEL" = tiny-random ]; then
  cat <<'BANNER'
#######################################################################################
#  NO PRETRAINED WEIGHTS INSTALLED: running on `tiny-random` (random weights, 64 px).   #
#  Edits will not look like faces. The released Anycost files are no longer served;    #
#  real faces today come from NVIDIA's StyleGAN2 FFHQ network (and e4e for photos):     #
#######################################################################################
BANNER
  "$PY" -m worker.anycost.weights.stack banner | sed 's/^/   /'
  echo
fi

echo "migrating the database (${DATABASE_URL:-SQLite var/anycost.db})"
"$PY" -m shared.store.migrate upgrade

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM

CELERY=("$PY" -m celery -A worker.process.celery_app worker --loglevel INFO)
"${CELERY[@]}" -Q preview,final -c 1 -n "worker1@%h" >"$LOG"/worker.log 2>&1 &
worker_pid=$!
pids+=($worker_pid)
"${CELERY[@]}" -Q evaluate -c 1 -n "evaluate1@%h" >"$LOG"/evaluate.log 2>&1 &
pids+=($!)
"$PY" -m worker.process.reaper >"$LOG"/reaper.log 2>&1 &
pids+=($!)
"${FLASK[@]}" webhooks deliver >"$LOG"/webhooks.log 2>&1 &
pids+=($!)
"${FLASK[@]}" run --host 127.0.0.1 --port "$PORT" >"$LOG"/web.log 2>&1 &
pids+=($!)

user="demo-$(date +%s)"
token=$("${FLASK[@]}" create-user "$user" --password demo-password | tail -n 1)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

# Until the worker serves its model (/readyz 200), or has stopped: then say why, as the web does.
echo "loading model $ANYCOST_MODEL in the worker ($LOG/worker.log)..."
ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true)
for _ in $(seq "${RUN_STACK_LOAD_WAIT:-900}"); do
  [ "$ready" = 200 ] && break
  kill -0 "$worker_pid" 2>/dev/null || break
  sleep 1
  ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true)
done
if [ "$ready" != 200 ]; then
  curl -s "http://127.0.0.1:$PORT/readyz" | "$PY" -c '
import json, sys
check = json.load(sys.stdin).get("checks", {}).get("model", {})
print("\n!! THE WORKER DOES NOT SERVE ITS MODEL; uploads are refused (409 model_unavailable).")
reason = check.get("reason", check.get("error", "see the worker log"))
print("!! " + reason[:1].upper() + reason[1:])
print("!! Fix: " + check.get("fix", "see the worker log"))' || true
fi

cat <<MSG

Anycost batch editor is running (model: $ANYCOST_MODEL).
  Portal:   http://127.0.0.1:$PORT/   (user: $user, password: demo-password)
  API token: $token
  Try:
    curl -H "Authorization: Bearer $token" -F files=@photo.jpg \\
         -F 'recipe={"edits": {"smiling": 0.6}}' http://127.0.0.1:$PORT/api/v1/batches
  Processes: worker (previews, finals), evaluate (evaluations), reaper, webhooks, web
  Logs: $LOG/{web,worker,evaluate,reaper,webhooks}.log   Stop: Ctrl-C
MSG
wait
