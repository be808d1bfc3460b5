"""Image bytes (uploads, projections, previews, finals).

``DatabaseBlobStore`` (the default) keeps bytes in the ``blobs`` table, so workers on other hosts
need nothing but the database. ``FilesystemBlobStore`` writes files under a directory (which must
then be shared by every host) and keeps only the metadata row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from shared.platform.settings import Settings
from shared.store.tables import Blob, new_id


class BlobNotFound(KeyError):
    pass


class BlobStore:
    def put(self, session: Session, data: bytes, content_type: str,
            batch_id: str | None = None) -> Blob:
        raise NotImplementedError

    def get(self, session: Session, blob_id: str) -> tuple[bytes, str]:
        raise NotImplementedError

    def delete(self, session: Session, blob_ids: Iterable[str | None]) -> int:
        """Delete blobs (rows now; files once the transaction commits). Returns rows deleted.
        The caller has dropped every reference to them in the same transaction."""
        ids = sorted({i for i in blob_ids if i})
        if not ids:
            return 0
        paths = session.scalars(select(Blob.path).where(Blob.id.in_(ids), Blob.path.is_not(None)))
        _on_commit_unlink(session, [p for p in paths if p])
        return session.execute(
            delete(Blob).where(Blob.id.in_(ids)).execution_options(synchronize_session=False)
        ).rowcount

    def _row(self, session: Session, blob_id: str) -> Blob:
        blob = session.get(Blob, blob_id)
        if blob is None:
            raise BlobNotFound(blob_id)
        return blob


class DatabaseBlobStore(BlobStore):
    def put(self, session: Session, data: bytes, content_type: str,
            batch_id: str | None = None) -> Blob:
        blob = Blob(
            id=new_id(), content_type=content_type, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), data=data, batch_id=batch_id,
        )
        session.add(blob)
        return blob

    def get(self, session: Session, blob_id: str) -> tuple[bytes, str]:
        blob = self._row(session, blob_id)
        if blob.data is None:  # written by a filesystem store earlier
            return FilesystemBlobStore.read_path(blob), blob.content_type
        return blob.data, blob.content_type


class FilesystemBlobStore(BlobStore):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def put(self, session: Session, data: bytes, content_type: str,
            batch_id: str | None = None) -> Blob:
        blob_id = new_id()
        path = self.root / blob_id[:2] / blob_id
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)
        _on_rollback_unlink(session, path)  # a result that loses its race leaves no file
        blob = Blob(
            id=blob_id, content_type=content_type, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), path=str(path), batch_id=batch_id,
        )
        session.add(blob)
        return blob

    def get(self, session: Session, blob_id: str) -> tuple[bytes, str]:
        blob = self._row(session, blob_id)
        if blob.data is not None:
            return blob.data, blob.content_type
        return self.read_path(blob), blob.content_type

    @staticmethod
    def read_path(blob: Blob) -> bytes:
        try:
            return Path(blob.path or "").read_bytes()
        except OSError:
            raise BlobNotFound(blob.id) from None


# Files follow their rows: written before the row is committed (removed if it rolls back),
# removed after the row's deletion is committed (kept if it rolls back).
_NEW = "anycost_new_files"
_GONE = "anycost_deleted_files"


def _watch(session: Session) -> None:
    if session.info.get("anycost_watched"):
        return
    session.info["anycost_watched"] = True

    @event.listens_for(session, "after_commit")
    def _committed(sess: Session) -> None:
        sess.info.pop(_NEW, None)
        _unlink(sess.info.pop(_GONE, []))

    @event.listens_for(session, "after_rollback")
    def _rolled_back(sess: Session) -> None:
        sess.info.pop(_GONE, None)
        _unlink(sess.info.pop(_NEW, []))


def _on_rollback_unlink(session: Session, path: Path) -> None:
    _watch(session)
    session.info.setdefault(_NEW, []).append(str(path))


def _on_commit_unlink(session: Session, paths: list[str]) -> None:
    if paths:
        _watch(session)
        session.info.setdefault(_GONE, []).extend(paths)


def _unlink(paths: Iterable[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass  # already gone


def make_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "filesystem":
        return FilesystemBlobStore(settings.blob_dir)
    return DatabaseBlobStore()
