"""Evaluation jobs in SQL (SQLite and PostgreSQL): one claim per job, guarded ends, a stale
running job claimable again; the worker app routes the task to its queue with its own limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from shared.catalog.configs import get_model_config
from shared.commands.errors import CommandError
from shared.commands.evaluations import Evaluations, parse_request
from shared.platform.queue import EVALUATE_TASK, Dispatcher
from shared.platform.settings import Settings, get_settings, set_settings
from shared.store.db import make_engine, make_session_factory
from shared.store.tables import Evaluation, User, WorkerHeartbeat, utcnow
from tests.conftest import private_redis


@pytest.fixture
def evaluations(migrated):
    with private_redis("evaluate") as redis_url:
        settings = Settings(database_url=migrated, redis_url=redis_url, eval_time_limit=600)
        engine = make_engine(migrated)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            session.add(User(username="owner"))
        yield Evaluations(settings, sessions, Dispatcher(settings))
        engine.dispose()


def _owner(evaluations) -> int:
    with evaluations.sessions() as session:
        return session.query(User).one().id


def test_one_claim_guarded_ends_and_stale_reclaim(evaluations):
    model = get_model_config("tiny-random")
    first = evaluations.create(_owner(evaluations), model, {"kind": "consistency", "n": 4})
    claimed = evaluations.claim(first, "w:1")
    assert claimed is not None and claimed.status == "running" and claimed.attempts == 1
    assert evaluations.claim(first, "w:2") is None  # a second delivery does nothing
    assert evaluations.finish(first, {"results": []})
    assert not evaluations.fail(first, "internal_error", "late")  # done stays done
    with evaluations.sessions() as session:
        row = session.get(Evaluation, first)
        assert (row.status, row.error_code, row.worker) == ("done", None, "w:1")

    second = evaluations.create(_owner(evaluations), model, {"kind": "ppl", "n": 2})
    assert evaluations.claim(second, "dead:1") is not None
    with evaluations.sessions.begin() as session:  # its worker is alive, then falls silent
        session.add(WorkerHeartbeat(name="dead:1", queues="evaluate", model_name="tiny-random",
                                    pretrained=False, device="cpu"))
    assert evaluations.claim(second, "w:3") is None
    with evaluations.sessions.begin() as session:
        session.execute(update(WorkerHeartbeat).values(last_seen=utcnow() - timedelta(hours=1)))
    again = evaluations.claim(second, "w:3")
    assert again is not None and again.worker == "w:3" and again.attempts == 2

    third = evaluations.create(_owner(evaluations), model, {"kind": "ppl", "n": 2})
    assert evaluations.claim(third, "w:4") is not None  # no heartbeat row: presumed alive
    assert evaluations.claim(third, "w:5") is None
    with evaluations.sessions.begin() as session:  # ... until the job is older than its limit
        session.execute(update(Evaluation).where(Evaluation.id == third)
                        .values(started_at=utcnow() - timedelta(seconds=3600)))
    assert evaluations.claim(third, "w:5").worker == "w:5"


def test_request_defaults_and_limits():
    model, settings = get_model_config("anycost-ffhq-config-f"), Settings(eval_max_n=1000)
    assert parse_request({"kind": "fid", "n": 10, "data": "ffhq-1k", "channels": 1},
                         model, settings) == {
        "n": 10, "channels": 1.0, "resolution": None, "seed": 0, "data": "ffhq-1k"}
    for body in ({"kind": "fid", "n": 1001}, {"kind": "ppl", "n": True},
                 {"kind": "fid", "n": 4, "resolution": 64}, {"kind": "fid", "n": 4, "seed": -1},
                 {"kind": "fid", "n": 4, "data": "a/b"}, ["fid"]):
        with pytest.raises(CommandError) as err:
            parse_request(body, model, settings)
        assert err.value.status == 400 and err.value.code == "invalid_parameter"


def test_worker_app_routes_evaluations_with_their_own_limits():
    from worker.process.celery_app import create_worker_app

    previous = get_settings()
    try:
        app = create_worker_app(Settings(redis_url="redis://127.0.0.1:1/0", eval_time_limit=900))
        task = app.tasks[EVALUATE_TASK]
        assert (task.soft_time_limit, task.time_limit) == (900, 960)
        assert app.amqp.router.route({}, EVALUATE_TASK)["queue"].name == "evaluate"
    finally:
        set_settings(previous)


def test_redis_down_is_a_503_and_the_job_is_marked(evaluations):
    down = Settings(database_url=evaluations.settings.database_url,
                    redis_url="redis://127.0.0.1:1/0")
    offline = Evaluations(down, evaluations.sessions, Dispatcher(down))
    with pytest.raises(CommandError) as err:
        offline.create(_owner(evaluations), get_model_config("tiny-random"),
                       {"kind": "fid", "n": 2})
    assert err.value.status == 503
    with evaluations.sessions() as session:
        row = session.query(Evaluation).one()
        assert (row.status, row.error_code) == ("failed", "queue_unavailable")


def test_active_evaluations_are_limited_per_user_and_service_and_private(evaluations):
    """6 parallel requests of one user (cap 2) -> 2 queued; the service's cap (3) refuses a third
    user until one ends; a user neither lists nor reads another's evaluation."""
    import threading

    settings = Settings(database_url=evaluations.settings.database_url,
                        redis_url=evaluations.settings.redis_url, eval_user_active=2,
                        eval_max_active=3)
    limited = Evaluations(settings, evaluations.sessions, evaluations.dispatcher)
    model = get_model_config("tiny-random")
    with evaluations.sessions.begin() as session:
        session.add_all([User(username="bea"), User(username="cyd")])
    with evaluations.sessions() as session:
        ids = {u.username: u.id for u in session.query(User)}
    start, outcomes = threading.Barrier(6), []

    def one() -> None:
        start.wait()
        try:
            outcomes.append(limited.create(ids["owner"], model, {"kind": "ppl", "n": 2}))
        except CommandError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    mine = [o for o in outcomes if isinstance(o, str)]
    assert len(mine) == 2 and outcomes.count(429) == 4
    bea = limited.create(ids["bea"], model, {"kind": "ppl", "n": 2})
    with pytest.raises(CommandError) as err:
        limited.create(ids["cyd"], model, {"kind": "ppl", "n": 2})
    assert err.value.status == 429 and "service" in err.value.message
    assert limited.finish(mine[0], {"results": []})
    limited.create(ids["cyd"], model, {"kind": "ppl", "n": 2})  # room again
    with evaluations.sessions() as session:
        assert [e.id for e in limited.list(session, "tiny-random", ids["bea"])] == [bea]
        assert len(limited.list(session, "tiny-random", ids["owner"])) == 2
        with pytest.raises(CommandError) as err:
            limited.get(session, "tiny-random", mine[1], ids["bea"])
        assert err.value.status == 404
        assert limited.get(session, "tiny-random", mine[1], ids["owner"]).id == mine[1]


def test_the_operator_shares_an_evaluation_with_every_user(evaluations):
    """Private by default; once shared (the operator's CLI), another user lists and reads it,
    and making it private again hides it again. Another private one stays hidden throughout."""
    model = get_model_config("tiny-random")
    with evaluations.sessions.begin() as session:
        session.add(User(username="dee"))
    with evaluations.sessions() as session:
        ids = {u.username: u.id for u in session.query(User)}
    reference = evaluations.create(ids["owner"], model, {"kind": "ppl", "n": 2})
    private = evaluations.create(ids["owner"], model, {"kind": "consistency", "n": 2})

    def seen_by_dee() -> list[str]:
        with evaluations.sessions() as session:
            return [e.id for e in evaluations.list(session, "tiny-random", ids["dee"])]

    assert seen_by_dee() == []
    assert evaluations.share(reference).shared_at is not None
    assert seen_by_dee() == [reference]
    with evaluations.sessions() as session:
        assert evaluations.get(session, "tiny-random", reference, ids["dee"]).id == reference
        with pytest.raises(CommandError) as err:
            evaluations.get(session, "tiny-random", private, ids["dee"])
        assert err.value.status == 404
        with pytest.raises(CommandError):  # shared with this model's readers, not another's
            evaluations.get(session, "tiny-random-other", reference, ids["dee"])
    assert evaluations.share(reference, shared=False).shared_at is None
    assert seen_by_dee() == []
    with pytest.raises(CommandError) as err:
        evaluations.share("no-such-evaluation")
    assert err.value.status == 404
