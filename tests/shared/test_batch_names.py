"""Checking a batch's name: stripped, NFC, one line, at most 200 characters, blank is none."""

import pytest

from shared.recipe.batch_names import MAX_NAME_CHARS, BatchNameError, parse_batch_name


def test_names_are_stripped_and_normalised():
    assert parse_batch_name("  Zoe\u0308 ") == "Zo\u00eb"  # combining diaeresis -> one character
    assert parse_batch_name(None) is None
    assert parse_batch_name(" \u3000 ") is None  # blank, ideographic space included
    assert parse_batch_name("x" * MAX_NAME_CHARS) == "x" * MAX_NAME_CHARS


@pytest.mark.parametrize("raw", [3, ["a"], {"a": 1}, True, "a\nb", "a\u2028b", "a\x7fb",
                                 "x" * (MAX_NAME_CHARS + 1)])
def test_bad_names_raise_with_the_field(raw):
    with pytest.raises(BatchNameError) as err:
        parse_batch_name(raw)
    assert err.value.field == "name" and err.value.message
