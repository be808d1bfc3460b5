"""Which models are live and why one is not (``shared.commands.availability``), from heartbeat
rows written by the worker's own code (``worker.process.heartbeat``), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.commands.availability import live_models, outage, outages, require_live
from shared.commands.errors import CommandError
from shared.items.sending import Sender
from shared.platform.queue import Dispatcher
from shared.store.tables import WorkerHeartbeat, utcnow
from worker.process.heartbeat import Heartbeat, clear_load_failure, report_load_failure

MODEL = "stylegan2-ffhq-config-f"


def _beat(sessions, name: str, queues: str = "preview,final", model: str = MODEL, age: float = 0):
    Heartbeat(sessions, name, interval=60, queues=queues, model_name=model).beat(
        now=utcnow() - timedelta(seconds=age))


def _fail(sessions, node: str, model: str = MODEL):
    report_load_failure(sessions, node, model_name=model, queues="preview,final",
                        reason="generator not installed in /weights", fix="run import-nvidia")


def test_no_worker_ever_is_unavailable_with_a_pointer_to_start_one(settings, sessions):
    with sessions() as session:
        found = outage(session, settings, MODEL)
        assert live_models(session, settings) == set()
        with pytest.raises(CommandError) as refused:
            require_live(session, settings, MODEL)
    assert "no worker serving it has reported" in found.reason and "celery" in found.fix
    assert found.worker is None
    assert refused.value.status == 409 and refused.value.code == "model_unavailable"
    assert MODEL in refused.value.message and "Fix:" in refused.value.message


def test_a_worker_that_loaded_its_model_makes_it_live(settings, sessions):
    _beat(sessions, "w@a:1")
    with sessions() as session:
        assert live_models(session, settings) == {MODEL}
        assert outage(session, settings, MODEL) is None
        require_live(session, settings, MODEL)  # no raise
        assert outages(session, settings) == []


def test_a_failure_report_is_never_live_and_gives_the_reason_and_the_fix(settings, sessions):
    _fail(sessions, "w@a")
    _fail(sessions, "w@a")  # a retry refreshes the node's one row
    with sessions() as session:
        assert session.query(WorkerHeartbeat).count() == 1
        assert live_models(session, settings) == set()
        found = outage(session, settings, MODEL)
        (listed,) = outages(session, settings)
    assert found.reason == "its worker w@a could not load it: generator not installed in /weights"
    assert found.fix == "run import-nvidia" and found.worker == "w@a"
    assert listed.as_dict()["name"] == MODEL and listed.as_dict()["reported_at"].endswith("Z")


def test_loading_later_on_the_same_node_clears_its_report(settings, sessions):
    _fail(sessions, "w@a")
    _beat(sessions, "w@a:7")  # the node's pool process, after the files were installed
    clear_load_failure(sessions, "w@a")
    with sessions() as session:
        assert [r.name for r in session.query(WorkerHeartbeat)] == ["w@a:7"]
        assert outage(session, settings, MODEL) is None


def test_a_worker_that_stopped_beating_is_named_with_the_time(settings, sessions):
    _fail(sessions, "w@a")
    with sessions.begin() as session:  # the failure is old news: a healthy worker ran since
        session.query(WorkerHeartbeat).update({"last_seen": utcnow() - timedelta(hours=2)})
    _beat(sessions, "w@b:3", age=settings.heartbeat_timeout + 60)
    with sessions() as session:
        found = outage(session, settings, MODEL)
    assert found.reason.startswith("its last worker w@b:3 stopped beating at ")
    assert found.worker == "w@b:3"


def test_an_evaluate_only_worker_does_not_serve_uploads(settings, sessions):
    _beat(sessions, "eval@a:1", queues="evaluate")
    with sessions() as session:
        assert live_models(session, settings) == set()
        found = outage(session, settings, MODEL)
    assert "does not take previews" in found.reason


def test_other_models_are_not_affected(settings, sessions):
    _fail(sessions, "car@a", model="anycost-car-config-f")
    _beat(sessions, "w@a:1")
    with sessions() as session:
        assert live_models(session, settings) == {MODEL}
        assert [o.model for o in outages(session, settings)] == ["anycost-car-config-f"]


def test_group_sizes_do_not_count_workers_whose_model_did_not_load(settings, sessions):
    sender = Sender(settings, sessions, Dispatcher(settings))
    _beat(sessions, "w@a:1", model=settings.model)
    _beat(sessions, "w@b:1", model=settings.model)
    assert sender.group_size(8, "final") == 2  # two live workers: two groups each
    with sessions.begin() as session:
        session.query(WorkerHeartbeat).filter_by(name="w@b:1").delete()
    report_load_failure(sessions, "w@b", model_name=settings.model, queues="preview,final",
                        reason="broken", fix="fix it")
    assert sender.group_size(8, "final") == settings.render_batch_size
