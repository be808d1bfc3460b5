"""Recipe validation: defaults, aliases, errors that name the field."""

import pytest

from shared.recipe.parse import RecipeError, allowed_resolutions, parse_recipe, recipe_from_stored


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


def test_keep_format_is_a_boolean_defaulting_to_false():
    assert parse_recipe({}, 1024).keep_format is False
    assert parse_recipe({"keep_format": True}, 1024).keep_format is True
    with pytest.raises(RecipeError) as err:
        parse_recipe({"keep_format": "yes"}, 1024)
    assert (err.value.field, err.value.message) == ("keep_format", "must be true or false")
    stored = parse_recipe({}, 1024).as_dict()
    del stored["keep_format"]  # a batch stored before the field existed
    assert recipe_from_stored(stored).keep_format is False


@pytest.mark.parametrize(("raw", "field", "message"), [
    ({"preview": {"channels": True}}, "preview.channels", "True is not one of 0.25, 0.5, 0.75, 1.0"),
    ({"edits": {"smiling": True}}, "edits.smiling", "value must be a number in [-1, 1]"),
    ({"edits": {"smiling": -2}}, "edits.smiling", "value -2 is outside [-1, 1]"),
    ({"edits": ["smiling"]}, "edits", "must be an object of attribute -> value"),
    ({"preview": {"size": 1}}, "preview.size", "unknown field"),
    ({"preview": 256}, "preview", "must be an object with channels and resolution"),
    ({"refine_steps": True}, "refine_steps", "must be an integer from 0 to 200"),
    ({"faces": "some"}, "faces", "'some' is not one of largest, all"),
])
def test_structural_errors_keep_their_messages(raw, field, message):
    with pytest.raises(RecipeError) as err:
        parse_recipe(raw, 1024)
    assert (err.value.field, err.value.message) == (field, message)


def test_an_unknown_field_is_named_before_other_problems():
    with pytest.raises(RecipeError) as err:
        parse_recipe({"output": "gif", "colour": 1}, 1024)
    assert err.value.field == "colour" and "keep_format" in err.value.message


def test_whole_numbers_are_channel_ratios_and_edit_values():
    recipe = parse_recipe({"preview": {"channels": 1}, "edits": {"smiling": 1}}, 1024)
    assert recipe.preview.channels == 1.0 and recipe.edits == {"31_Smiling": 1.0}


@pytest.mark.parametrize("value", ["yes", 1, 0, None, "true"])
def test_keep_format_must_be_a_json_boolean(value):
    with pytest.raises(RecipeError) as err:
        parse_recipe({"keep_format": value}, 1024)
    assert err.value.field == "keep_format" and err.value.message == "must be true or false"
