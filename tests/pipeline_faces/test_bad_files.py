"""A corpus of bad and awkward files through the real system: the web app over HTTP and a real
Celery worker process (tiny-random, SQLite, Redis DB 8). Each item ends with the right error code
or a correct output (a photo the original's size), the good faces finish, the worker survives."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
import skimage.data
from PIL import Image

from shared.commands.batches import Upload
from shared.platform.settings import Settings
from shared.recipe.parse import parse_recipe
from shared.store.tables import Item
from tests.conftest import redis_db_url
from tests.support.stack import running_stack, settled

pytestmark = pytest.mark.integration

RECIPE = {"edits": {"smiling": 0.5}, "preview": {"channels": 0.5, "resolution": 32},
          "final": {"channels": 1.0, "resolution": 64}}


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_bomb(side: int) -> bytes:
    """A PNG whose header claims side x side grey pixels (one row of data)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * (side + 1))) + _chunk(b"IEND", b""))


def _hopper() -> bytes:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return f.read()


def corpus() -> dict[str, tuple[str, bytes, str, str | None]]:
    """name -> (filename, bytes, content type, expected error code or None for an output)."""
    astro = Image.fromarray(skimage.data.astronaut())
    jpeg = _save(astro, "JPEG", quality=90)
    at = jpeg.index(b"\xff\xc0")
    huge_header = jpeg[: at + 5] + struct.pack(">HH", 60_000, 60_000) + jpeg[at + 9:]
    grey16 = (np.asarray(astro.convert("L")).astype(np.uint16) * 257)
    frames = [astro.convert("P"), Image.new("RGB", astro.size, (0, 255, 0)).convert("P")]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return {
        "astronaut": ("astronaut.png", _save(astro, "PNG"), "image/png", None),
        "hopper": ("grace_hopper.jpg", _hopper(), "image/jpeg", None),
        "truncated": ("cut.jpg", jpeg[: len(jpeg) // 2], "image/jpeg", "corrupt_image"),
        "bomb": ("bomb.png", _png_bomb(20_000), "image/png", "too_large"),
        "huge_header": ("huge.jpg", huge_header, "image/jpeg", "too_large"),
        "wrong_ext": ("really_png.jpg", _save(astro, "PNG"), "image/jpeg", None),
        "png16": ("grey16.png", _save(Image.fromarray(grey16), "PNG"), "image/png", None),
        "cmyk": ("cmyk.jpg", _save(astro.convert("CMYK"), "JPEG", quality=92), "image/jpeg", None),
        "animated": ("anim.gif", gif.getvalue(), "image/gif", None),
        "no_face": ("coffee.png", _save(Image.fromarray(skimage.data.coffee()), "PNG"),
                    "image/png", "no_face"),
    }


#: Refused by the web side at upload (status); inserted directly to check the worker's code too.
EARLY = {
    "zero": ("empty.jpg", b"", "image/jpeg", 400, "empty_file"),
    "text": ("notes.jpg", b"just some text, not a photo\n" * 20, "image/jpeg", 415,
             "unsupported_format"),
    "html": ("page.png", b"<!DOCTYPE html><html><body>hi</body></html>", "image/png", 415,
             "unsupported_format"),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, tiny_weights_dir) -> Iterator[tuple]:
    base = tmp_path_factory.mktemp("faces-stack")
    settings = Settings(database_url=f"sqlite:///{base / 'anycost.db'}",
                        redis_url=redis_db_url("pipeline_faces_stack"), model="tiny-random",
                        weights_dir=tiny_weights_dir, render_batch_size=4, torch_threads=1)
    with running_stack(settings, "faces", base / "worker.log", "faces") as stack:
        yield stack.api, stack.services, stack.worker, stack.user_id


def test_bad_files_fail_alone_and_good_photos_finish(stack):
    api, svc, worker, user_id = stack
    files = corpus()
    for name, (fname, data, ctype, status, _) in EARLY.items():
        r = api.http.post(f"{api.base}/batches", files=[("files", (fname, data, ctype))],
                          data={"recipe": "{}"})
        assert r.status_code == status, (name, r.status_code, r.text[:200])

    created = api.submit([f[:3] for f in files.values()], RECIPE)
    batch = api.wait(created["id"], settled("preview_ready", "failed"), timeout=300)
    items = dict(zip(files, batch["items"], strict=True))
    for name, (_, _data, _, code) in files.items():
        item = items[name]
        if code is None:
            assert item["status"] == "preview_ready", (name, item.get("error"))
        else:
            assert item["status"] == "failed", (name, item["status"])
            assert (item.get("error") or {}).get("code", item.get("error_code")) == code, (name, item)

    # The early-refused bytes, inserted directly, get the same codes from the worker.
    uploads = [Upload(f, d, c) for f, d, c, _, _ in EARLY.values()]
    direct = svc.batches.create_batch(user_id, uploads, parse_recipe(RECIPE, 64))
    api.wait(direct, settled("failed", "preview_ready"), timeout=120)
    with svc.sessions() as session:
        rows = session.query(Item).filter(Item.batch_id == direct).order_by(Item.position).all()
        assert [r.error_code for r in rows] == [e[4] for e in EARLY.values()]

    api.finalize(created["id"])
    batch = api.wait(created["id"], settled("done", "failed"), timeout=300)
    items = dict(zip(files, batch["items"], strict=True))
    for name, (_, data, _, code) in files.items():
        if code is not None:
            continue
        assert items[name]["status"] == "done", name
        out, ctype = api.image(items[name]["final_url"])
        assert ctype == "image/jpeg"
        with Image.open(io.BytesIO(out)) as final, Image.open(io.BytesIO(data)) as original:
            assert final.size == original.size, name
    assert worker.proc.poll() is None  # the worker survived the whole corpus
