"""Retries charge the culprit, not its group: with real worker processes (groups of 2), a
pool process killed while it holds a group, then killed again while it renders one of that
group alone. Only a take alone is charged, so the bystanders keep their attempts and every
item settles; nobody fails ``worker_lost`` (cap 3) for crashes it did not cause."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import FaultStack
from tests.faults.test_faults import SETTLE, _check, _submit

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]


def _held(stack: FaultStack, batch: str) -> dict[str, list]:
    """Worker -> the batch's items (rows) it holds for a preview."""
    out: dict[str, list] = {}
    for row in stack.items(batch):
        if row.status == "previewing" and row.worker:
            out.setdefault(row.worker, []).append(row)
    return out


def _on_child(worker, holder: str) -> bool:
    pid = worker.child_pid()
    return pid is not None and holder.endswith(f":{pid}")


def test_two_crashes_leave_the_bystanders_their_attempts(fault_stack):
    stack = fault_stack
    worker = stack.worker()
    batch = _submit(stack, 6)
    started = time.monotonic()
    group: list[str] = []

    def a_group_held() -> bool:
        for holder, rows in _held(stack, batch).items():
            if len(rows) > 1 and _on_child(worker, holder):
                group[:] = [r.id for r in rows]
                return True
        return False

    stack.wait_for(a_group_held, 60, "a group held by the pool process")
    worker.kill_child()  # crash 1: the whole group was being processed
    stack.wait_child(worker)
    alone: list[str] = []

    def one_of_them_held_alone() -> bool:
        # Alone: the only item its process holds, and charged (a take alone is charged when
        # taken; one of a group still being claimed is not, and is not alone).
        for holder, rows in _held(stack, batch).items():
            if len(rows) == 1 and rows[0].id in group and rows[0].attempts >= 1 \
                    and _on_child(worker, holder):
                alone[:] = [rows[0].id]
                return True
        return False

    stack.wait_for(one_of_them_held_alone, 60, "an item of the crashed group held alone")
    worker.kill_child()  # crash 2: it alone was being processed
    settled = stack.settle(batch, SETTLE)
    rows = {r.id: r for r in stack.items(batch)}
    exp = stack.record("two crashes: group, then one of it alone", [batch],
                       time.monotonic() - started, final=False)
    print(f"\ncrash 1 held {len(group)} items; crash 2 held {alone[0][:8]} alone; settled "
          f"{settled:.1f} s after; attempts {sorted(r.attempts for r in rows.values())}; "
          f"outcomes {exp.codes}")
    _check(stack, exp)
    assert exp.codes == {"preview_ready": 6}, "nobody pays for a crash it did not cause"
    assert rows[alone[0]].attempts == 2  # the crash it was alone for, and its success
    assert all(r.attempts <= 1 for i, r in rows.items() if i != alone[0])
