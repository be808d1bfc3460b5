"""An item's result image from its rendered faces: pasted back into the photo (output "photo")
or the face crop itself ("crop"), in the format the recipe asks for.

Previews paste into the photo at preview scale (``worker.render.preview_photo``, cached per item) and
are JPEG (photo) or PNG (crop); finals paste into the full-size photo, JPEG or PNG, or with
``keep_format`` the upload's own format.
"""

from __future__ import annotations

import numpy as np

from worker.render import preview_photo, stages, store
from worker.render.faces import AlignTransform, paste_into
from worker.render.images import (
    FINAL_JPEG_QUALITY,
    JPEG,
    PNG,
    encode_as,
    encode_jpeg,
    encode_png,
    final_media_type,
)
from worker.render.job import RenderJob
from worker.render.runtime import Runtime


def encode_result(rt: Runtime, job: RenderJob, crops, kind: str) -> tuple[bytes, str]:
    """One item's result from its rendered faces ``[F, R, R, 3]``: output "photo" pastes each
    face back into the photo (JPEG): a preview into the photo at preview scale (cached per item,
    worker.render.preview_photo), a final into the full-size photo; "crop" is the first face's crop
    (PNG). With the recipe's ``keep_format`` a photo's final (either output) is written in its
    upload's format instead (``kept_format``); previews never are (speed)."""
    transforms = [m.get("transform") for m in job.face_meta]
    kept = kept_format(job, kind)
    if job.recipe.output != "photo" or not transforms or None in transforms:
        return (encode_as(crops[0], kept), kept) if kept else (encode_png(crops[0]), PNG)
    aligned = [AlignTransform.from_dict(t) for t in transforms]
    if kind == "preview":
        key = (job.item_id, job.upload_blob_id, repr(transforms))
        scaled = preview_photo.CACHE.get(
            key, lambda: preview_photo.at_preview_scale(full_photo(rt, job), aligned))
        return preview_photo.paste_preview(scaled, crops), JPEG
    picture = np.array(full_photo(rt, job)[:, :, :3])  # a copy: the decoded photo stays as it was
    for crop, transform in zip(crops, aligned, strict=False):
        paste_into(picture, crop, transform)
    if kept:
        return encode_as(picture, kept), kept
    return encode_jpeg(picture, quality=FINAL_JPEG_QUALITY), JPEG


def kept_format(job: RenderJob, kind: str) -> str | None:
    """The media type of a ``keep_format`` final (JPEG, PNG or WebP as uploaded, any other
    upload as PNG); None otherwise: previews, other recipes, synthesised items (no upload)."""
    if kind != "final" or not job.recipe.keep_format or job.upload_type is None:
        return None
    return final_media_type(job.upload_type)


def full_photo(rt: Runtime, job: RenderJob) -> np.ndarray:
    """The item's upload, decoded once per pass (kept on the job)."""
    if job.photo is None:  # re-edit or final: the photo was decoded by an earlier pass
        job.photo = stages.decode(store.read_upload(rt, job), rt.settings.max_pixels)
    return job.photo
