"""A fix for kombu's Redis acknowledgements, installed in every worker process.

kombu's Redis ``QoS.ack`` removes the message from the unacked index and only then frees the
consumer's prefetch slot. When Redis times out in between (hung, restarting), the slot is never
freed: with ``worker_prefetch_multiplier=1`` and one pool process, the worker then takes no
message ever again ("Couldn't ack ... network:TimeoutError", seen with a SIGSTOPped Redis).
Here the removal is retried for a few seconds and the slot is freed whatever happens. A message
whose removal still failed stays in the unacked index and is delivered again after the visibility
timeout, which the guarded transitions (shared.items.states) turn into a no-op.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

ACK_RETRY_SECONDS = 5.0


def _retried(call: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + ACK_RETRY_SECONDS
    while True:
        try:
            call()
            return
        except Exception as exc:  # redis errors: timeouts, refused connections
            if time.monotonic() >= deadline:
                log.warning("%s failed (%s); the message is delivered again after the "
                            "visibility timeout", what, exc)
                return
            time.sleep(0.5)


def install() -> None:
    """Patch kombu's Redis QoS (idempotent)."""
    from kombu.transport import redis as kombu_redis
    from kombu.transport import virtual

    qos = kombu_redis.QoS
    if getattr(qos, "_anycost_safe_ack", False):
        return

    def ack(self, delivery_tag):
        try:
            _retried(lambda: self._remove_from_indices(delivery_tag).execute(), "ack")
        finally:
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        try:
            if requeue:
                _retried(lambda: self.restore_by_tag(delivery_tag, leftmost=True), "requeue")
            else:
                _retried(lambda: self._remove_from_indices(delivery_tag).execute(), "reject")
        finally:
            virtual.QoS.ack(self, delivery_tag)

    qos.ack = ack
    qos.reject = reject
    qos._anycost_safe_ack = True
