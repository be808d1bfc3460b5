"""Image bytes (uploads, projections, previews, finals).

``DatabaseBlobStore`` (the default) keeps bytes in the ``blobs`` table, so workers on other hosts
need nothing but the database. ``FilesystemBlobStore`` writes files under a directory (which must
then be shared by every host) and keeps only the metadata row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from shared.models import Blob, new_id
from shared.settings import Settings


class BlobNotFound(KeyError):
    pass


class BlobStore:
    def put(self, session: Session, data: bytes, content_type: str) -> Blob:
        raise NotImplementedError

    def get(self, session: Session, blob_id: str) -> tuple[bytes, str]:
        raise NotImplementedError

    def _row(self, session: Session, blob_id: str) -> Blob:
        blob = session.get(Blob, blob_id)
        if blob is None:
            raise BlobNotFound(blob_id)
        return blob


class DatabaseBlobStore(BlobStore):
    def put(self, session: Session, data: bytes, content_type: str) -> Blob:
        blob = Blob(
            id=new_id(), content_type=content_type, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), data=data,
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

    def put(self, session: Session, data: bytes, content_type: str) -> Blob:
        blob_id = new_id()
        path = self.root / blob_id[:2] / blob_id
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)
        blob = Blob(
            id=blob_id, content_type=content_type, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), path=str(path),
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


def make_blob_store(settings: Settings) -> BlobStore:
    if settings.blob_store == "filesystem":
        return FilesystemBlobStore(settings.blob_dir)
    return DatabaseBlobStore()
