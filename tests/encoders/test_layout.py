"""The layout check on the real 1024 px e4e / pSp layout, as 'meta' tensors (nothing allocated):
the released layout passes, and every kind of deviation is named in one line."""

from __future__ import annotations

import json

import pytest
import torch

from tests.encoders import reference
from worker.anycost.checkpoints import CheckpointError
from worker.anycost.e4e import check_layout, expected_state_dict
from worker.anycost.e4e_import import DEFAULT_CONFIG, _config_name

CONFIG_F = {"resolution": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2,
            "channel_max": 512}


def released_1024(method: str) -> dict:
    """The real 1024 px checkpoint's structure: its state_dict as meta tensors, its opts."""
    opts = json.loads((reference.REFERENCE / method / "manifest.json").read_text())["opts"]
    opts = {**opts, "stylegan_size": 1024, "output_size": 1024}
    return {"state_dict": reference.layout_1024(method), "opts": opts,
            "latent_avg": torch.empty(18, 512, device="meta")}


@pytest.mark.parametrize("method", ["e4e", "psp"])
def test_our_models_have_the_released_1024_layout(method):
    want = json.loads(reference.LAYOUT_1024.read_text())[method]
    ours = expected_state_dict(method, 18, CONFIG_F)
    assert sorted((k, list(v.shape)) for k, v in ours.items()) == sorted((k, s) for k, s in want)
    assert len(ours) == len(want) == 792
    assert all(v.device.type == "meta" for v in ours.values())


@pytest.mark.parametrize("method", ["e4e", "psp"])
def test_the_released_1024_layout_passes(method):
    obj = released_1024(method)
    layout = check_layout(obj, "release.pt")
    assert (layout.method, layout.resolution, layout.n_style) == (method, 1024, 18)
    assert layout.generator_config == CONFIG_F
    assert layout.start_from_latent_avg == (method == "e4e")
    assert len(layout.encoder) + len(layout.decoder) == len(obj["state_dict"]) == 792
    assert _config_name(reference.REFERENCE, layout, None) == DEFAULT_CONFIG


def _mutate(case: str) -> dict:
    obj = released_1024("e4e")
    sd, opts = obj["state_dict"], obj["opts"]
    meta = {"device": "meta"}
    if case == "missing key":
        del sd["encoder.styles.17.linear.bias"]
    elif case == "unexpected key":
        sd["encoder.styles.18.linear.bias"] = torch.empty(512, **meta)
    elif case == "unknown layer":
        sd["encoder.extra.weight"] = torch.empty(512, **meta)
    elif case == "wrong shape":
        sd["decoder.convs.0.conv.weight"] = torch.empty(1, 512, 512, 1, 1, **meta)
    elif case == "too few style blocks":
        for key in [k for k in sd if k.startswith("encoder.styles.17.")]:
            del sd[key]
    elif case == "key outside the model":
        sd["discriminator.0.weight"] = torch.empty(1, **meta)
    elif case == "integer weight":
        sd["encoder.latlayer1.bias"] = torch.empty(512, dtype=torch.int64, **meta)
    elif case == "float counter":
        sd["encoder.input_layer.1.num_batches_tracked"] = torch.empty((), **meta)
    elif case == "decoder size":
        opts["stylegan_size"] = 512
    elif case == "unknown encoder":
        opts["encoder_type"] = "BackboneEncoderUsingLastLayerIntoW"
    elif case == "no encoder type":
        del opts["encoder_type"]
    elif case == "sketch input":
        opts["input_nc"] = 1
    elif case == "learn in w":
        opts["learn_in_w"] = True
    elif case == "latent_avg shape":
        obj["latent_avg"] = torch.empty(17, 512, **meta)
    elif case == "no latent_avg":
        del obj["latent_avg"]
    elif case == "extra entry":
        obj["code"] = "print('hi')"
    elif case == "opts not a dict":
        obj["opts"] = ["encoder_type"]
    elif case == "a generator file":
        return {"g_ema": {k[8:]: v for k, v in sd.items() if k.startswith("decoder.")}}
    return obj


MUTATIONS = {
    "missing key": "missing keys (1): encoder.styles.17.linear.bias",
    "unexpected key": "unexpected keys (1): encoder.styles.18.linear.bias",
    "unknown layer": "unexpected keys (1): encoder.extra.weight",
    "wrong shape": "wrong shapes (1): decoder.convs.0.conv.weight is [1, 512, 512, 1, 1]",
    "too few style blocks": "missing keys (14): encoder.styles.17.convs.0.weight",
    "key outside the model": "outside encoder.*/decoder.*: discriminator.0.weight",
    "integer weight": "encoder.latlayer1.bias is torch.int64, expected a floating-point tensor",
    "float counter": "num_batches_tracked is torch.float32, expected an integer tensor",
    "decoder size": "opts stylegan_size is 512 but the decoder is 1024 px",
    "unknown encoder": "encoder_type 'BackboneEncoderUsingLastLayerIntoW' is not supported",
    "no encoder type": "opts has no 'encoder_type'",
    "sketch input": "input_nc 1: only encoders of RGB photos",
    "learn in w": "learn_in_w",
    "latent_avg shape": "latent_avg is [17, 512], expected [18, 512]",
    "no latent_avg": "start_from_latent_avg but the file has no latent_avg",
    "extra entry": "unexpected top-level entries: code",
    "opts not a dict": "'opts' is a list",
    "a generator file": "not an e4e/pSp checkpoint",
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_deviations_are_named_in_one_line(case):
    with pytest.raises(CheckpointError) as info:
        check_layout(_mutate(case), "release.pt")
    message = str(info.value)
    assert message.startswith("release.pt: ") and "\n" not in message
    assert MUTATIONS[case] in message, message


def test_psp_without_latent_avg_is_fine_and_training_leftovers_are_ignored():
    obj = released_1024("psp")
    del obj["latent_avg"]
    obj["discriminator_state_dict"] = {"w.0.weight": torch.empty(1, device="meta")}
    layout = check_layout(obj, "psp.pt")
    assert layout.latent_avg is None and not layout.start_from_latent_avg
