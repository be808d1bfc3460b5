"""Fault injection with real processes: every item settles (done, or failed with a stable code)
within a bound after the fault ends, none is stored twice, no 5xx outside the outage.

One module-scoped stack (see conftest); the experiments run in order and each leaves a worker
running for the next. Each appends a row (submitted, settled, lost, duplicated, recovery time)
to the table printed at the end (and written to $ANYCOST_FAULTS_REPORT when set).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from shared.codes.errors import ErrorCode
from tests.faults.conftest import DEFAULT_TIMEOUTS, RECIPE, FaultStack
from tests.support.stack import real_photos

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

# Seconds allowed after a fault ends: heartbeat timeout 4 s, visibility 20 s; with the defaults
# (bench.faults) a dead worker is noticed after 45 s of silence.
SETTLE = 300 if DEFAULT_TIMEOUTS else 60
STABLE = {c.value for c in ErrorCode}


def _photos(n: int) -> list:
    photos = real_photos()[:2]  # two faces the detector finds
    return [(f"{i}-{name}", data, ctype) for i, (name, data, ctype) in
            enumerate(photos[i % len(photos)] for i in range(n))]


def _submit(stack: FaultStack, n: int) -> str:
    return stack.api.submit(_photos(n), RECIPE)["id"]


def _check(stack: FaultStack, exp, outages: list[tuple[float, float]] = ()) -> None:
    assert exp.lost == 0, f"{exp.name}: items never settled: {exp.codes}"
    assert exp.duplicated == 0, f"{exp.name}: a result was stored twice"
    failed = {k for k in exp.codes if k not in {"preview_ready", "done"}}
    assert failed <= STABLE, f"{exp.name}: unstable outcomes {exp.codes}"
    assert not stack.api.server_errors(list(outages)), "5xx outside the outage"


def _preview_then_final(stack: FaultStack, name: str, fault, n: int = 4) -> None:
    """A fault mid-preview, then (on the same batch) mid-final."""
    batch = _submit(stack, n)
    stack.wait_held(batch, "previewing")
    fault()
    exp = stack.record(f"{name} mid-preview", [batch], stack.settle(batch, SETTLE), final=False)
    _check(stack, exp)
    stack.api.finalize(batch)
    stack.wait_held(batch, "finalizing")
    fault()
    exp = stack.record(f"{name} mid-final", [batch], stack.settle(batch, SETTLE, final=True),
                       final=True)
    _check(stack, exp)
    assert exp.codes == {"done": n}, "one kill costs an attempt, not the item"


def test_worker_child_killed(fault_stack):
    worker = fault_stack.worker()
    _preview_then_final(fault_stack, "kill -9 worker child", worker.kill_child)
    assert worker.alive(), "Celery replaced its pool process"


def test_worker_child_killed_around_a_warm_re_edit(fault_stack):
    """A re-edit of an item the pool process rendered is warm there (worker.render.warm): its
    render starts with no take, so nothing in SQL says a worker holds it. Killed right after
    the edit is sent (before, during or after that render), the message goes to the new pool
    process, which holds nothing warm and takes the item: it settles at the new version."""
    stack = fault_stack
    worker = stack.worker()
    batch = _submit(stack, 1)
    stack.settle(batch, SETTLE)
    (item,) = stack.items(batch)
    assert stack.api.edit(item.id, {"smiling": -0.5})["edit_version"] == 1
    worker.kill_child()
    started = time.monotonic()

    def settled() -> bool:
        (row,) = stack.items(batch)
        return row.status == "preview_ready" and row.edit_version == 1

    stack.wait_for(settled, SETTLE, "the re-edit's preview after the kill", poll=0.2)
    exp = stack.record("kill -9 worker child around a warm re-edit", [batch],
                       time.monotonic() - started, final=False)
    _check(stack, exp)
    assert worker.alive(), "Celery replaced its pool process"


def test_whole_worker_killed(fault_stack):
    def kill_and_replace():
        fault_stack.worker().kill()
        fault_stack.start_worker(wait=False)  # another host takes over

    _preview_then_final(fault_stack, "kill -9 whole worker", kill_and_replace)


def _big_photo() -> tuple[str, bytes, str]:
    """A 2400 px photo: its decode and face search take long enough to be caught mid-way."""
    import io

    from PIL import Image

    name, data, _ = real_photos()[0]
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").resize((2400, 2400)).save(out, "JPEG")
    return "big-" + name.replace(".png", ".jpg"), out.getvalue(), "image/jpeg"


def test_photo_that_kills_its_worker_fails_after_the_cap(fault_stack):
    """A photo whose processing kills the pool process, every time it is taken (here the kill
    comes from the test, as soon as the new pool process has taken the item)."""
    stack = fault_stack
    worker = stack.worker()
    batch = stack.api.submit([_big_photo()], RECIPE)["id"]
    kills = 0
    started = time.monotonic()

    waiting = {"queued", "previewing"}
    killed: set[int] = set()

    def taken_by_current_child() -> bool:
        (row,) = stack.items(batch)
        pid = worker.child_pid()
        return row.status not in waiting or (
            row.status == "previewing" and pid is not None and pid not in killed
            and str(row.worker).endswith(f":{pid}"))

    while stack.items(batch)[0].status in waiting:
        stack.wait_for(taken_by_current_child, 90, "the item taken by the pool process")
        if stack.items(batch)[0].status not in waiting:
            break
        killed.add(worker.kill_child())
        kills += 1
        assert kills <= stack.settings.max_attempts + 1, "taken again and again"
    (item,) = stack.items(batch)
    exp = stack.record("pool process killed on every take", [batch],
                       time.monotonic() - started, final=False)
    assert (item.status, item.error_code) == ("failed", "worker_lost")
    assert kills == stack.settings.max_attempts, f"taken {kills} times with a cap of 3"
    assert item.attempts == stack.settings.max_attempts
    _check(stack, exp)


def test_redis_killed_and_restarted_from_aof(fault_stack):
    stack = fault_stack

    def restart():
        stack.redis.stop(kill=True)
        time.sleep(2)
        stack.redis.start()

    stack.worker()
    _preview_then_final(stack, "Redis kill -9, restart from AOF", restart)


def test_redis_data_wiped(fault_stack):
    stack = fault_stack
    client = redis.Redis.from_url(stack.settings.redis_url)
    stack.worker()
    batches = [_submit(stack, 4), _submit(stack, 4)]  # the second waits in the queue
    client.flushall()
    wiped = time.monotonic()
    took = max(stack.settle(b, SETTLE) for b in batches)
    exp = stack.record("Redis FLUSHALL (queued)", batches, time.monotonic() - wiped, final=False)
    _check(stack, exp)
    assert took >= 0
    for b in batches:
        stack.api.finalize(b)
    client.flushall()  # the finals' messages are gone too
    wiped = time.monotonic()
    for b in batches:
        stack.settle(b, SETTLE, final=True)
    exp = stack.record("Redis FLUSHALL (finals)", batches, time.monotonic() - wiped, final=True)
    _check(stack, exp)
    assert exp.codes == {"done": 8}
    client.close()


def test_redis_hung(fault_stack):
    stack = fault_stack
    stack.worker()
    pid = stack.redis.proc.pid
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        started = time.monotonic()
        batch = _submit(stack, 1)  # 201 even so: the item is in SQL, sent later
        upload_s = time.monotonic() - started
        stack.api.batch(batch)
        time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.monotonic()
    exp = stack.record("Redis SIGSTOP 10 s", [batch], stack.settle(batch, SETTLE), final=False)
    exp.name += f" (upload answered in {upload_s:.2f} s)"
    assert upload_s < 2.0, f"an upload waited {upload_s:.1f}s on a hung Redis"
    _check(stack, exp)
    assert time.monotonic() - resumed < SETTLE


def test_database_refusing_connections(fault_stack):
    stack = fault_stack
    stack.worker()
    outages = []

    def outage():
        start = time.monotonic()
        stack.refuse_db(True)
        time.sleep(10)
        stack.refuse_db(False)
        outages.append((start, time.monotonic() + 1))

    batch = _submit(stack, 4)
    stack.wait_held(batch, "previewing")
    outage()
    exp = stack.record("database refusing 10 s mid-preview", [batch],
                       stack.settle(batch, SETTLE), final=False)
    _check(stack, exp, outages)
    stack.api.finalize(batch)
    stack.wait_held(batch, "finalizing")
    outage()
    exp = stack.record("database refusing 10 s mid-final", [batch],
                       stack.settle(batch, SETTLE, final=True), final=True)
    _check(stack, exp, outages)
    assert exp.codes == {"done": 4}


def test_finalize_and_edit_while_redis_down(fault_stack):
    stack = fault_stack
    stack.worker()
    batch = _submit(stack, 3)
    stack.settle(batch, SETTLE)
    first = stack.items(batch)[0].id
    stack.redis.stop(kill=True)
    try:
        assert stack.api.edit(first, {"smiling": -0.5})["edit_version"] == 1  # 202
        assert stack.api.finalize(batch)["queued"] == 2  # 202 for the other two
        rows = stack.items(batch)
        assert {r.status for r in rows} == {"previewing", "finalizing"}
        assert all(r.worker is None for r in rows)
    finally:
        time.sleep(1)
        stack.redis.start()
    back = time.monotonic()

    def settled() -> bool:
        rows = stack.items(batch)
        return rows[0].status == "preview_ready" and rows[0].edit_version == 1 and \
            all(r.status == "done" for r in rows[1:])

    stack.wait_for(settled, SETTLE, "edit and finals sent after Redis came back", poll=0.2)
    exp = stack.record("finalize + edit while Redis down", [batch], time.monotonic() - back,
                       final=False)
    _check(stack, exp)
