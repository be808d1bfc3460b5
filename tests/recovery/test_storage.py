"""Storage that does not grow for ever: DELETE of a batch removes every byte of it (rows and
files), retention deletes old batches, a user over quota is told to come back later (429)."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from shared.commands.errors import CommandError
from shared.store.retention import delete_expired
from shared.store.tables import Batch, Blob, Item, Latent, utcnow
from tests.recovery.conftest import make_batch, make_jobs
from web import create_app
from web.auth import create_token, create_user
from web.extensions import services


def _count(sessions, model, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _files(settings) -> list[Path]:
    return [p for p in Path(settings.blob_dir).rglob("*") if p.is_file()]


def _add_results(jobs, sessions, batch_id) -> None:
    """What workers leave behind: a latent, preview/final blobs, and an orphan blob (a crash
    between storing it and referencing it)."""
    with sessions.begin() as session:
        for item in session.scalars(select(Item).where(Item.batch_id == batch_id)):
            session.add(Latent(item_id=item.id, shape=[1], data=b"\0" * 4, model_name="m",
                               meta={}, encode_seconds=0.0))
            item.preview_blob_id = jobs.blobs.put(session, b"p", "image/png", batch_id).id
            item.final_blob_id = jobs.blobs.put(session, b"f", "image/png", batch_id).id
        jobs.blobs.put(session, b"orphan", "image/png", batch_id)


def test_delete_batch_removes_every_byte(jobs, sessions, settings, owner_id):
    keep = make_batch(jobs, owner_id, 1)
    batch_id = make_batch(jobs, owner_id, 2)
    _add_results(jobs, sessions, batch_id)
    files_before = len(_files(settings))
    assert files_before == 1 + 2 * 3 + 1

    assert jobs.delete_batch(owner_id, batch_id) == {"items": 2, "latents": 2, "blobs": 7}
    assert _count(sessions, Batch, Batch.id == batch_id) == 0
    assert _count(sessions, Item, Item.batch_id == batch_id) == 0
    assert _count(sessions, Blob, Blob.batch_id == batch_id) == 0
    assert _count(sessions, Latent) == 0
    assert len(_files(settings)) == 1, "only the other batch's upload is left on disk"
    assert _count(sessions, Item, Item.batch_id == keep) == 1
    with pytest.raises(CommandError) as gone:
        jobs.delete_batch(owner_id, batch_id)
    assert gone.value.status == 404


def test_a_rolled_back_blob_leaves_no_file(jobs, sessions, settings):
    with sessions() as session:
        jobs.blobs.put(session, b"lost race", "image/png")
        assert len(_files(settings)) == 1
        session.rollback()
    assert _files(settings) == []


def test_retention_deletes_old_batches(jobs, sessions, settings, owner_id):
    old, young = make_batch(jobs, owner_id, 1), make_batch(jobs, owner_id, 1)
    with sessions.begin() as session:
        session.execute(update(Batch).where(Batch.id == old)
                        .values(created_at=utcnow() - timedelta(days=8)))
    assert delete_expired(jobs.settings, jobs.sessions, jobs.blobs) == 0, "retention off by default"
    keeping = make_jobs(dataclasses.replace(settings, retention_days=7), sessions)
    assert delete_expired(keeping.settings, keeping.sessions, keeping.blobs) == 1
    assert _count(sessions, Batch) == 1 and _count(sessions, Batch, Batch.id == young) == 1


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 100, 90)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def client(settings):
    app = create_app(dataclasses.replace(settings, blob_store="database"))
    app.config["VALIDATE_RESPONSES"] = True
    with services(app).sessions.begin() as session:
        token = create_token(session, create_user(session, "api-user"))
    yield app.test_client(), {"Authorization": f"Bearer {token}"}
    services(app).close()


def _upload(http, headers, n: int):
    files = [(io.BytesIO(_png()), f"p{i}.png") for i in range(n)]
    return http.post("/api/v1/batches", headers=headers, content_type="multipart/form-data",
                     data={"files": files, "recipe": "{}"})


def test_delete_over_the_api(client):
    http, headers = client
    created = _upload(http, headers, 2)
    assert created.status_code == 201
    batch_id = created.json["id"]
    assert http.delete(f"/api/v1/batches/{batch_id}", headers=headers).status_code == 204
    assert http.get(f"/api/v1/batches/{batch_id}", headers=headers).status_code == 404
    assert http.delete(f"/api/v1/batches/{batch_id}", headers=headers).status_code == 404


def test_over_quota_is_429_with_retry_after(client, settings):
    http, headers = client
    for _ in range(settings.user_quota // 4):  # 12 waiting of a quota of 14
        assert _upload(http, headers, 4).status_code == 201
    refused = _upload(http, headers, 4)
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "quota_exceeded"
    assert int(refused.headers["Retry-After"]) > 0
    assert _upload(http, headers, 2).status_code == 201, "what fits the quota is taken"
