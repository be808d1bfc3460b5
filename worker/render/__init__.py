"""The render path: decode, faces, encode, edit and render an item's previews and finals (no Celery here)."""
