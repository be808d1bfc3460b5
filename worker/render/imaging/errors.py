"""The one exception every image/face stage raises for a photo it refuses.

The pipeline catches `ImageError`, stores `code` on the item (a stable value of
`shared.codes.errors.ErrorCode`) and shows `message`; `detail` is for logs only (it may name library
internals a user should not see).
"""

from __future__ import annotations

from shared.codes.errors import ErrorCode, message_for


class ImageError(Exception):
    """A per-item refusal: `code` is stable, `message` is written for a person."""

    def __init__(self, code: ErrorCode | str, detail: str = "", message: str | None = None):
        self.code = str(code)
        self.message = message or message_for(self.code)
        self.detail = detail
        super().__init__(f"{self.code}: {detail or self.message}")
