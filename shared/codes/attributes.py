"""The attribute catalogue: the 40 CelebA edit directions and friendly aliases (pure Python).

Keys are those of the released boundary files (``boundary_<config>.pt``), in file order. The
aliases are the seven sliders of the original Anycost editor.
"""

from __future__ import annotations

#: Boundary-file keys, in CelebA attribute order.
ATTRIBUTES: tuple[str, ...] = (
    "00_5_o_Clock_Shadow", "01_Arched_Eyebrows", "02_Attractive", "03_Bags_Under_Eyes",
    "04_Bald", "05_Bangs", "06_Big_Lips", "07_Big_Nose", "08_Black_Hair", "09_Blond_Hair",
    "10_Blurry", "11_Brown_Hair", "12_Bushy_Eyebrows", "13_Chubby", "14_Double_Chin",
    "15_Eyeglasses", "16_Goatee", "17_Gray_Hair", "18_Heavy_Makeup", "19_High_Cheekbones",
    "20_Male", "21_Mouth_Slightly_Open", "22_Mustache", "23_Narrow_Eyes", "24_No_Beard",
    "25_Oval_Face", "26_Pale_Skin", "27_Pointy_Nose", "28_Receding_Hairline", "29_Rosy_Cheeks",
    "30_Sideburns", "31_Smiling", "32_Straight_Hair", "33_Wavy_Hair", "34_Wearing_Earrings",
    "35_Wearing_Hat", "36_Wearing_Lipstick", "37_Wearing_Necklace", "38_Wearing_Necktie",
    "39_Young",
)

#: The original editor's sliders -> boundary keys.
ALIASES: dict[str, str] = {
    "smiling": "31_Smiling",
    "young": "39_Young",
    "wavy_hair": "33_Wavy_Hair",
    "gray_hair": "17_Gray_Hair",
    "blonde_hair": "09_Blond_Hair",
    "eyeglasses": "15_Eyeglasses",
    "mustache": "22_Mustache",
}

#: Edit values are clamped to this range by contract (the slider's -100..100 divided by 100).
EDIT_RANGE: tuple[float, float] = (-1.0, 1.0)
#: The original slider formula's gain: ``w[:, :12] += value * EDIT_GAIN * direction``.
EDIT_GAIN = 0.6
#: How many leading W+ slots an edit touches (fewer if the generator has fewer).
EDIT_SLOTS = 12


def bare_name(key: str) -> str:
    """'31_Smiling' -> 'Smiling'."""
    return key.split("_", 1)[1]


def _lookup_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for key in ATTRIBUTES:
        table[key.lower()] = key
        table[bare_name(key).lower()] = key
    for alias, key in ALIASES.items():
        table[alias] = key
    return table


_LOOKUP = _lookup_table()


def resolve_attribute(name: str) -> str:
    """Return the boundary key for an alias, a full key or a bare CelebA name (any case).

    Raises KeyError (with the valid aliases in the message) for an unknown name.
    """
    key = _LOOKUP.get(str(name).strip().lower().replace(" ", "_"))
    if key is None:
        raise KeyError(
            f"unknown attribute {name!r}; use an alias ({', '.join(ALIASES)}), "
            f"a CelebA name such as 'Smiling', or a key such as '31_Smiling'"
        )
    return key
