"""Recipe validation: defaults, aliases, errors that name the field."""

import pytest

from shared.recipe import RecipeError, allowed_resolutions, parse_recipe, recipe_from_stored


def test_defaults_for_1024():
    r = parse_recipe({}, 1024)
    assert r.preview.as_dict() == {"channels": 0.5, "resolution": 256}
    assert r.final.as_dict() == {"channels": 1.0, "resolution": 1024}
    assert r.output == "photo" and r.faces == "largest" and not r.auto_finalize


def test_aliases_resolve_to_boundary_keys():
    r = parse_recipe('{"edits": {"smiling": 0.5, "Male": -1, "39_Young": 0}}', 1024)
    assert r.edits == {"31_Smiling": 0.5, "20_Male": -1.0}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"edits": {"sparkle": 0.5}}, "edits.sparkle"),
        ({"edits": {"smiling": 1.5}}, "edits.smiling"),
        ({"edits": {"smiling": "lots"}}, "edits.smiling"),
        ({"preview": {"channels": 0.3}}, "preview.channels"),
        ({"final": {"resolution": 300}}, "final.resolution"),
        ({"preview": {"resolution": 2048}}, "preview.resolution"),
        ({"output": "gif"}, "output"),
        ({"colour": 1}, "colour"),
        ("{not json", "recipe"),
        ([1, 2], "recipe"),
    ],
)
def test_errors_name_the_field(raw, field):
    with pytest.raises(RecipeError) as err:
        parse_recipe(raw, 1024)
    assert err.value.field == field


def test_small_model_resolutions():
    assert allowed_resolutions(64) == [32, 64]
    assert parse_recipe({}, 64).preview.resolution == 32


def test_round_trip():
    r = parse_recipe({"edits": {"young": -0.3}, "auto_finalize": True}, 1024)
    assert recipe_from_stored(r.as_dict()) == r


def test_keep_format_defaults_to_false_and_round_trips():
    assert parse_recipe({}, 1024).keep_format is False
    r = parse_recipe({"keep_format": True, "output": "crop"}, 1024)
    assert r.keep_format is True and r.as_dict()["keep_format"] is True
    assert recipe_from_stored(r.as_dict()) == r


def test_keep_format_of_a_recipe_stored_before_it_existed_is_false():
    stored = parse_recipe({}, 1024).as_dict()
    del stored["keep_format"]
    assert recipe_from_stored(stored).keep_format is False


@pytest.mark.parametrize("value", ["yes", 1, 0, None, "true"])
def test_keep_format_must_be_a_boolean(value):
    with pytest.raises(RecipeError) as err:
        parse_recipe({"keep_format": value}, 1024)
    assert err.value.field == "keep_format" and err.value.message == "must be true or false"
