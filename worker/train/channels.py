"""Stage 2 helpers: sort a generator's channels by importance, sample sub-networks, encode them.

Sub-networks keep the FIRST k channels of every layer (``worker.anycost.layers``), so before
stage 2 every layer's channels are reordered best first. A channel's importance is how strongly
the layers reading it use it: for each consumer (the next modulated conv, the ToRGB) the L2 norm
of its weights over that input channel times the channel's style scale at the average w, each
consumer's scores normalised to sum 1, summed. Reordering is a permutation applied consistently
(the producer's out-channels and bias, the consumers' in-channels and modulation rows), so the
full network computes exactly the same function.

``g_arch`` (what ``DiscriminatorMultiRes(modulate=True)`` is conditioned on): 4 values per
channel layer, layer-major, 4 * n_style values in all (a generator has n_style = 2 * levels
channel layers: input, conv1, then two per level). The 4 values of a layer are its width
fraction f = count / full_count written as interpolation weights over the anchors (0.25, 0.5,
0.75, 1.0): an anchor ratio is one-hot, f between two anchors splits 1 between them linearly,
f < 0.25 puts f / 0.25 on the first anchor. A uniform ratio whose widths are capped by
channel_max (the low levels of a 1024 px model) encodes the widths it really has.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from shared.catalog.costs import CHANNEL_RATIOS
from worker.anycost.generator import Generator
from worker.anycost.layers import ModulatedConv2d

ANCHORS: tuple[float, ...] = CHANNEL_RATIOS  # (0.25, 0.5, 0.75, 1.0)


def _layer_graph(g: Generator) -> list[tuple[str, list[ModulatedConv2d]]]:
    """Per channel layer: (producer name, the modulated convs that read its channels)."""
    graph: list[tuple[str, list[ModulatedConv2d]]] = [("input", [g.conv1.conv])]
    first_rgb = [g.to_rgb1.conv] + ([g.convs[0].conv] if len(g.convs) else [])
    graph.append(("conv1", first_rgb))
    for level in range(len(g.to_rgbs)):
        up, same = 2 * level, 2 * level + 1
        graph.append((f"convs.{up}", [g.convs[same].conv]))
        readers = [g.to_rgbs[level].conv]
        if same + 1 < len(g.convs):
            readers.append(g.convs[same + 1].conv)
        graph.append((f"convs.{same}", readers))
    return graph


@torch.no_grad()
def channel_importance(g: Generator, w_avg: torch.Tensor | None = None) -> list[torch.Tensor]:
    """One importance score per channel of every channel layer (higher is more important)."""
    if w_avg is None:
        ref = g.input.input
        z = torch.randn(1024, g.style_dim, generator=torch.Generator(ref.device).manual_seed(0),
                        device=ref.device).to(ref.dtype)
        w_avg = g.mapping(z).mean(0, keepdim=True)
    scores = []
    for _, readers in _layer_graph(g):
        total = 0
        for conv in readers:
            style = conv.modulation(w_avg.view(1, -1))[0].abs()  # [Cin]
            norm = conv.weight[0].flatten(2).norm(dim=2).norm(dim=0)  # [Cin]
            s = norm * style
            total = total + s / s.sum().clamp_min(1e-12)
        scores.append(total)
    return scores


@torch.no_grad()
def permute_channels(g: Generator, perms: Sequence[torch.Tensor]) -> None:
    """Reorder every layer's channels in place: new channel j of layer i is old ``perms[i][j]``."""
    graph = _layer_graph(g)
    if len(perms) != len(graph):
        raise ValueError(f"need {len(graph)} permutations, got {len(perms)}")
    for (producer, readers), perm in zip(graph, perms, strict=True):
        perm = perm.to(g.input.input.device)
        if producer == "input":
            g.input.input.copy_(g.input.input[:, perm])
        else:
            layer = g.get_submodule(producer)
            layer.conv.weight.copy_(layer.conv.weight[:, perm])
            layer.activate.bias.copy_(layer.activate.bias[perm])
        for conv in readers:
            conv.weight.copy_(conv.weight[:, :, perm])
            conv.modulation.weight.copy_(conv.modulation.weight[perm])
            conv.modulation.bias.copy_(conv.modulation.bias[perm])


def sort_channels(g: Generator) -> list[torch.Tensor]:
    """Sort every layer best first (see the module docstring); returns the permutations used."""
    perms = [torch.argsort(s, descending=True, stable=True) for s in channel_importance(g)]
    permute_channels(g, perms)
    return perms


def g_arch(g: Generator, channels: Sequence[int]) -> torch.Tensor:
    """The 4 * n_style encoding of a per-layer channel config (see the module docstring)."""
    full = g.channel_config(None)
    if len(channels) != len(full):
        raise ValueError(f"need {len(full)} channel counts, got {len(channels)}")
    out = torch.zeros(len(full), len(ANCHORS))
    for i, (c, f_count) in enumerate(zip(channels, full, strict=True)):
        f = c / f_count
        if f <= ANCHORS[0]:
            out[i, 0] = f / ANCHORS[0]
            continue
        for a in range(1, len(ANCHORS)):
            lo, hi = ANCHORS[a - 1], ANCHORS[a]
            if f <= hi:
                t = (f - lo) / (hi - lo)
                out[i, a - 1], out[i, a] = 1 - t, t
                break
    return out.flatten()


def sandwich(g: Generator, rng: random.Random, n_random: int = 2,
             flexible_prob: float = 0.5) -> list[list[int]]:
    """The sub-networks of one stage-2 step by the sandwich rule (Yu & Huang, 2019; used by the
    Anycost paper): the largest (every channel), the smallest (ratio 0.25) and ``n_random``
    sampled ones (``sample_channels``). Training the two extremes every step bounds every
    sub-network in between; the random ones cover the rest."""
    return ([g.channel_config(ANCHORS[-1]), g.channel_config(ANCHORS[0])]
            + [sample_channels(g, rng, flexible_prob) for _ in range(n_random)])


def sample_channels(g: Generator, rng: random.Random, flexible_prob: float = 0.5) -> list[int]:
    """A training sub-network: a uniform ratio, or (with ``flexible_prob``) a ratio per layer.

    A flexible config takes each layer's width from that layer under an independently drawn
    uniform ratio, so every width it uses is one a uniform config also trains.
    """
    by_ratio = {r: g.channel_config(r) for r in ANCHORS}
    if rng.random() < flexible_prob:
        return [by_ratio[rng.choice(ANCHORS)][i] for i in range(len(by_ratio[1.0]))]
    return list(by_ratio[rng.choice(ANCHORS)])
