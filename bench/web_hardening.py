"""What the web hardening costs, side by side in one run:

- an item transition with its outbox event (``complete_preview``: UPDATE + event INSERT) against
  the bare guarded UPDATE (``transition``), on SQLite (and PostgreSQL with ``--pg URL``);
- about 1 MB of JSON through ``loads_checked`` (depth scan, escaped-control scan, parse) against
  plain ``json.loads``.

    .venv/bin/python -m bench.web_hardening [--items 300] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _items(sessions, n: int) -> list[str]:
    from shared.store.tables import Batch, Blob, Item, User, new_id

    with sessions.begin() as s:
        user = User(username=f"bench-{new_id()[:8]}")
        s.add(user)
        s.flush()
        batch = Batch(id=new_id(), owner_id=user.id, recipe={}, model_name="bench")
        s.add(batch)
        blob = Blob(id=new_id(), content_type="image/png", size=1, sha256="0" * 64, data=b"x")
        s.add(blob)
        s.flush()
        ids = [new_id() for _ in range(n)]
        for i, item_id in enumerate(ids):
            s.add(Item(id=item_id, batch_id=batch.id, position=i, filename="x.png",
                       status="previewing", upload_blob_id=blob.id, preview_cost={},
                       final_cost={}, timings={}, edit_version=0, attempts=1))
    return ids


def bench_transitions(url: str, n: int) -> tuple[float, float]:
    from shared.items import states
    from shared.store.db import make_engine, make_session_factory
    from shared.store.migrate import upgrade

    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    plain_ids, hooked_ids = _items(sessions, n), _items(sessions, n)

    def run(ids, step) -> float:
        start = time.perf_counter()
        for item_id in ids:
            with sessions.begin() as s:
                assert step(s, item_id)
        return (time.perf_counter() - start) / len(ids)

    plain = run(plain_ids, lambda s, i: states.transition(
        s, i, states.S.PREVIEW_READY, expected={states.S.PREVIEWING}, worker=None))
    hooked = run(hooked_ids, lambda s, i: states.complete_preview(s, i, 0))
    engine.dispose()
    return plain, hooked


def bench_json() -> dict[str, tuple[float, float]]:
    from web.safe_input import loads_checked

    texts = {
        "many keys": json.dumps({"edits": {f"attr{i}": 0.5 for i in range(50_000)}}),
        "many brackets": json.dumps([[[{"a": [1, 2, 3]}]] for _ in range(40_000)]),
        "escapes": json.dumps({"edits": {f"caf\u00e9 {i}\t": 0.5 for i in range(50_000)}}),
    }

    def timed(fn) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(5):
            fn()
        return (time.perf_counter() - start) / 5

    return {f"{name}, {len(text) / 1e6:.1f} MB": (timed(lambda t=text: json.loads(t)),
                                                  timed(lambda t=text: loads_checked(t)))
            for name, text in texts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL of an empty database")
    args = parser.parse_args()
    urls = {"sqlite": f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"}
    if args.pg:
        urls["postgresql"] = args.pg
    print(f"{'what':44} {'before':>10} {'after':>10} {'ratio':>7}")
    for name, url in urls.items():
        plain, hooked = bench_transitions(url, args.items)
        print(f"{'transition + commit, ' + name + ' (ms)':44} {plain * 1e3:10.3f} "
              f"{hooked * 1e3:10.3f} {hooked / plain:7.2f}")
    for name, (raw, checked) in bench_json().items():
        print(f"{'JSON parse, ' + name + ' (ms)':44} {raw * 1e3:10.3f} {checked * 1e3:10.3f} "
              f"{checked / raw:7.2f}")


if __name__ == "__main__":
    main()
