"""The quota check and the insert are one transaction serialised per user: parallel
``create_batch`` calls of one user (real threads, real database, both back-ends) never pass the
quota together, and another user's upload is not refused for them."""

import threading

from sqlalchemy import func, select

from shared.commands.batches import Batches, Upload
from shared.commands.errors import CommandError
from shared.platform.queue import Dispatcher
from shared.platform.settings import Settings
from shared.recipe.parse import parse_recipe
from shared.store.blobs import DatabaseBlobStore
from shared.store.db import make_engine, make_session_factory
from shared.store.tables import Batch, Item, User
from tests.support.workers import register_live_worker


def test_parallel_batches_of_one_user_stay_within_the_quota(migrated, redis_url):
    settings = Settings(database_url=migrated, redis_url=redis_url, model="tiny-random",
                        user_quota=40, batch_queue_cap=4)
    engine = make_engine(migrated, pool_size=10)
    sessions = make_session_factory(engine)
    with sessions.begin() as s:
        users = [User(username="ada"), User(username="bea")]
        s.add_all(users)
        s.flush()
        ada, bea = (u.id for u in users)
    register_live_worker(sessions, "tiny-random")  # uploads need a worker serving the model
    batches = Batches(settings, sessions, DatabaseBlobStore(), Dispatcher(settings))
    files = [Upload(f"p{i}.png", b"\x89PNG fake %d" % i, "image/png") for i in range(10)]
    recipe = parse_recipe({}, 64)
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def one() -> None:
        start.wait()
        try:
            batches.create_batch(ada, files, recipe)
            outcomes.append("created")
        except CommandError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    batches.create_batch(bea, files, recipe)  # her own quota
    with sessions() as s:
        stored = dict(s.execute(select(Batch.owner_id, func.count()).select_from(Item)
                                .join(Batch).group_by(Batch.owner_id)).all())
    engine.dispose()
    assert sorted(outcomes) == ["created"] * 4 + ["quota_exceeded"] * 4
    assert stored == {ada: 40, bea: 10}
