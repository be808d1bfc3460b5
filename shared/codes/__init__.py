"""Stable vocabulary, pure data: error codes, item statuses, attribute names, image types."""
