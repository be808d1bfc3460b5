"""Redis loses its data under the default settings (heartbeat 15 s, silence 90 s, visibility
2 x the hard limit + 60 s = 13 minutes): the reconciler's sentinel key is gone with it, so a
reaper pass comes at once and sends again at once what the database says was sent and no worker
holds (the reaper looks for the sentinel every 5 s between passes). Every item settles within a
minute of the wipe, none rendered twice."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from shared.platform.settings import Settings
from tests.faults.conftest import FaultStack, running_fault_stack
from tests.faults.test_faults import _check, _submit

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]

WITHIN = 60  # seconds from the wipe to every item settled


@pytest.fixture(scope="module")
def default_stack(tiny_weights_dir, tmp_path_factory) -> Iterator[FaultStack]:
    with running_fault_stack(tiny_weights_dir, tmp_path_factory) as stack:
        yield stack


def test_redis_flushall_with_default_settings_recovers_within_a_minute(default_stack):
    stack = default_stack
    defaults = Settings()
    assert (stack.settings.heartbeat_seconds, stack.settings.message_visibility) == (
        defaults.heartbeat_seconds, defaults.message_visibility)
    client = redis.Redis.from_url(stack.settings.redis_url)
    stack.worker()
    batches = [_submit(stack, 4), _submit(stack, 4), _submit(stack, 4)]  # most wait queued
    client.flushall()
    wiped = time.monotonic()
    for b in batches:
        stack.settle(b, WITHIN)
    took = time.monotonic() - wiped
    exp = stack.record(f"Redis FLUSHALL, default settings (visibility "
                       f"{stack.settings.message_visibility} s)", batches, took, final=False)
    print(f"\nFLUSHALL with default settings: 12 items settled {took:.1f} s after the wipe "
          f"({exp.codes}); the visibility timeout is {stack.settings.message_visibility} s")
    assert took < WITHIN
    _check(stack, exp)
    assert exp.codes == {"preview_ready": 12}
    client.close()
