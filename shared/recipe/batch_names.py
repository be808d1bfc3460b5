"""A batch's name: the owner's label for it (``batches.name``), checked once for every way in
(photo upload form field, synthesis JSON key, rename, the portal's forms).

A name is text of at most ``MAX_NAME_CHARS`` characters after stripping, without control
characters (tabs and line breaks included: a name is one line) and without bidirectional
controls (embeddings, overrides, isolates, marks: U+202A-202E, U+2066-2069, U+200E/200F, U+061C),
which could make a name read differently from what it is. Blank means no name (NULL).
"""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 200  # batches.name is String(200)
NAME_FIELD = "name"
# Control characters and the line/paragraph separators (one-line labels only).
_REFUSED_CATEGORIES = {"Cc", "Zl", "Zp"}
# Bidirectional formatting characters (Unicode category Cf, so not caught above).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                          "\u200e\u200f\u061c")


class BatchNameError(ValueError):
    """A name that cannot be used; ``message`` says why in words a person can act on."""

    field = NAME_FIELD

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_batch_name(raw: object) -> str | None:
    """The stored form of a requested name (NFC, stripped), None for none; raises
    :class:`BatchNameError`."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BatchNameError("the name must be text (or null for none)")
    name = unicodedata.normalize("NFC", raw).strip()
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in name):
        raise BatchNameError("the name must be one line without control characters")
    if any(ch in BIDI_CONTROLS for ch in name):
        raise BatchNameError("the name must not contain bidirectional control characters "
                             "(they make text read differently from what it is)")
    if len(name) > MAX_NAME_CHARS:
        raise BatchNameError(f"the name is {len(name)} characters long; at most "
                             f"{MAX_NAME_CHARS} are allowed")
    return name or None
