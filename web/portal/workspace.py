"""The item editor's workspace, as the template needs it: the edit sliders in groups (expression,
age, hair, accessories, pose, the rest of the face; the model's own and the learned directions)
and the filmstrip of the batch's photos with the previous and next one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.catalog.directions import generator_directions
from shared.codes.attributes import ATTRIBUTES
from shared.store.tables import Item
from web.api import serialize
from web.portal.forms import MAIN_SLIDERS, OTHER_SLIDERS, Slider

#: CelebA attributes by what they change; every attribute is in exactly one group, the seven
#: sliders of the original editor first in theirs.
ATTRIBUTE_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("expression", "Expression", ("31_Smiling", "21_Mouth_Slightly_Open", "23_Narrow_Eyes",
                                  "01_Arched_Eyebrows")),
    ("age", "Age", ("39_Young", "03_Bags_Under_Eyes")),
    ("hair", "Hair", ("33_Wavy_Hair", "17_Gray_Hair", "09_Blond_Hair", "22_Mustache",
                      "08_Black_Hair", "11_Brown_Hair", "32_Straight_Hair", "05_Bangs", "04_Bald",
                      "28_Receding_Hairline", "16_Goatee", "24_No_Beard", "00_5_o_Clock_Shadow",
                      "30_Sideburns")),
    ("accessories", "Accessories", ("15_Eyeglasses", "35_Wearing_Hat", "34_Wearing_Earrings",
                                    "37_Wearing_Necklace", "38_Wearing_Necktie",
                                    "36_Wearing_Lipstick", "18_Heavy_Makeup")),
    ("face", "Face", tuple(k for k in ATTRIBUTES if k in {
        "02_Attractive", "06_Big_Lips", "07_Big_Nose", "10_Blurry", "12_Bushy_Eyebrows",
        "13_Chubby", "14_Double_Chin", "19_High_Cheekbones", "20_Male", "25_Oval_Face",
        "26_Pale_Skin", "27_Pointy_Nose", "29_Rosy_Cheeks"})),
)
#: The attributes have no pose: a learned or saved direction named like one is shown as pose.
POSE_NAME = re.compile(r"pose|turn|yaw|tilt|pitch|rotat|head")
#: Short names where the CelebA ones are long for a narrow panel.
SHORT_LABELS = {"00_5_o_Clock_Shadow": "Stubble", "03_Bags_Under_Eyes": "Eye bags",
                "21_Mouth_Slightly_Open": "Mouth open"}


def _short(slider: Slider) -> Slider:
    """The editor's label: the seven original sliders as they are; the others in sentence
    case without "Wearing" (Hat, Necktie)."""
    if slider in MAIN_SLIDERS:
        return slider
    label = SHORT_LABELS.get(slider.key) or slider.label.removeprefix("Wearing ")
    return Slider(slider.key, label[:1].upper() + label[1:].lower(), slider.field)


_BY_KEY = {s.key: _short(s) for s in MAIN_SLIDERS + OTHER_SLIDERS}


@dataclass(frozen=True)
class SliderGroup:
    key: str
    label: str
    sliders: tuple[Slider, ...]
    hint: str = ""


def slider_groups(attributes: bool, user_directions: list[dict], weights_dir: str,
                  model: str) -> list[SliderGroup]:
    """The editor's groups, in the panel's order; empty ones are left out except pose, which
    says how to get one."""
    groups = []
    if attributes:
        groups += [SliderGroup(key, label, tuple(_BY_KEY[k] for k in keys))
                   for key, label, keys in ATTRIBUTE_GROUPS[:-1]]
    pose = [d for d in user_directions if POSE_NAME.search(d["name"])]
    learned = [d for d in user_directions if d not in pose]

    def own(d: dict) -> Slider:
        return Slider(d["key"], d["name"].replace("_", " "), f"edit_user_{d['name']}")

    groups.append(SliderGroup("pose", "Pose", tuple(own(d) for d in pose), hint=(
        "" if pose else "No pose direction yet: on Explore directions, save one of the model's "
        "own directions that turns the head under a name such as head_turn.")))
    if attributes:
        key, label, keys = ATTRIBUTE_GROUPS[-1]
        groups.append(SliderGroup(key, label, tuple(_BY_KEY[k] for k in keys)))
    groups.append(SliderGroup("learned", "Learned directions", tuple(own(d) for d in learned),
                              hint="" if learned else "Teach one on the batch page: mark photos "
                              "that have an attribute and photos that lack it."))
    generator = generator_directions(weights_dir, model)
    if generator:
        groups.append(SliderGroup("model", "The model's own directions", tuple(
            Slider(d["key"], d["label"], f"edit_{d['key']}")
            for d in generator)))
    return groups


def filmstrip(item: Item) -> dict:
    """The batch's photos in upload order (id, name, status, a small picture), which one is
    shown, and the previous and next (None at the ends)."""
    batch = item.batch
    frames = []
    for other in sorted(batch.items, key=lambda i: i.position):
        data = serialize.item_dict(other, batch)
        frames.append({
            "id": other.id, "filename": other.filename, "status": other.status,
            "picture": data["preview_url"] or data["original_url"] or data["projected_url"],
            "current": other.id == item.id,
        })
    at = next(i for i, f in enumerate(frames) if f["current"])
    return {"frames": frames, "position": at + 1,
            "previous": frames[at - 1] if at > 0 else None,
            "next": frames[at + 1] if at + 1 < len(frames) else None}
