"""Full-size networks have exactly the released key layout (built on the meta device: no memory)."""

from __future__ import annotations

import re

import pytest
import torch

from worker.anycost.discriminator import Discriminator, DiscriminatorMultiRes
from worker.anycost.encoder import Encoder
from worker.anycost.generator import Generator

LINE = re.compile(r"^\s+(\S+) \[([\d, ]*)\] (\w+)$")


def read_manifest(find_data, name: str) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """Sections (header line -> [(key, shape)]) of a key manifest; one unnamed section if no headers."""
    sections: dict[str, list] = {}
    current = ""
    for raw in find_data(name).read_text().splitlines():
        m = LINE.match(raw)
        if m:
            shape = tuple(int(x) for x in m.group(2).split(",") if x.strip())
            sections.setdefault(current, []).append((m.group(1), shape))
        elif raw.strip() and not raw.strip().startswith("#"):
            current = raw.strip()
    return sections


def layout(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def test_generator_1024_keys(find_data):
    (expected,) = read_manifest(find_data, "keys_generator_res1024.txt").values()
    with torch.device("meta"):
        g = Generator(1024)
    assert layout(g) == expected
    assert len(expected) == 171
    n_params = sum(p.numel() for p in g.parameters())
    assert round(n_params / 1e6, 4) == 30.3701
    assert g.n_style == 18


def test_encoder_keys(find_data):
    (expected,) = read_manifest(find_data, "keys_encoder.txt").values()
    with torch.device("meta"):
        enc = Encoder(n_style=18)
    assert layout(enc) == expected


@pytest.mark.parametrize("header", ["Discriminator(", "DiscriminatorMultiRes("])
def test_discriminator_keys(find_data, header):
    sections = read_manifest(find_data, "keys_discriminators_res1024.txt")
    (expected,) = [v for k, v in sections.items() if k.startswith(header)]
    with torch.device("meta"):
        d = Discriminator(1024) if header == "Discriminator(" else DiscriminatorMultiRes(1024, n_res=4, modulate=True)
    assert layout(d) == expected


def test_small_networks_run():
    torch.manual_seed(0)
    d = Discriminator(32, channel_multiplier=0.125)
    assert d(torch.randn(4, 3, 32, 32)).shape == (4, 1)
    dm = DiscriminatorMultiRes(32, channel_multiplier=0.125, n_res=2, modulate=True)
    g_arch = torch.rand(dm.g_arch_len)
    assert dm(torch.randn(2, 3, 16, 16), g_arch).shape == (2, 1)
    with pytest.raises(ValueError):
        dm(torch.randn(2, 3, 16, 16))  # modulated blocks need g_arch
    with pytest.raises(ValueError):
        dm(torch.randn(2, 3, 4, 4), g_arch)  # not an accepted resolution


@pytest.mark.slow
def test_encoder_forward_resizes():
    torch.manual_seed(0)
    enc = Encoder(n_style=10).eval()
    enc.mean_latent.fill_(0.5)
    with torch.inference_mode():
        x = torch.rand(1, 3, 128, 128) * 2 - 1
        out = enc(x)
        direct = enc(torch.nn.functional.interpolate(x, size=(256, 256), mode="bilinear", align_corners=True))
    assert out.shape == (1, 10, 512)
    assert torch.allclose(out, direct)
