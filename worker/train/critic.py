"""The discriminator side of distillation: the multi-resolution critic and its initialisation.

``MultiResCritic`` scores a list of image batches (several resolutions, real and fake) in one
forward, so that DistributedDataParallel sees one forward per backward. Before the model it
reorders every batch so that minibatch-stddev groups are CONTIGUOUS blocks of ``group`` samples
(the model's own layout interleaves them: sample i joins group i mod N/group). With a batch per
process divisible by the group size, a group then never spans two processes, and P processes
with b samples form exactly the groups one process with P * b samples forms. Every other layer
is per sample, so the reorder changes nothing else; scores come back in the input order.

``init_from_single_res`` copies an imported StyleGAN2 ``Discriminator`` state_dict into a
``DiscriminatorMultiRes`` wherever names and shapes agree (from-RGB at the top resolution, the
residual blocks, the head); the lower-resolution from-RGB convs and the architecture modulation
keep their fresh initialisation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from worker.anycost.discriminator import DiscriminatorMultiRes
from worker.anycost.layers import AdaptiveModulate, ConvLayer

STDDEV_GROUP = 4  # the group size ``worker.anycost.discriminator.minibatch_stddev`` uses


def contiguous_groups(x: torch.Tensor, group: int = STDDEV_GROUP) -> torch.Tensor:
    """Reorder [N, ...] so that minibatch_stddev groups samples [g*k, g*k + g) together."""
    n = x.shape[0]
    g = min(n, group)
    return x.reshape(n // g, g, *x.shape[1:]).transpose(0, 1).reshape(x.shape)


def _undo_groups(scores: torch.Tensor, group: int = STDDEV_GROUP) -> torch.Tensor:
    n = scores.shape[0]
    g = min(n, group)
    return scores.reshape(g, n // g, *scores.shape[1:]).transpose(0, 1).reshape(scores.shape)


class MultiResCritic(nn.Module):
    """``DiscriminatorMultiRes`` over a list of batches, stddev groups contiguous."""

    def __init__(self, d: DiscriminatorMultiRes):
        super().__init__()
        self.d = d

    def forward(self, images: Sequence[torch.Tensor],
                g_arch: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
                ) -> list[torch.Tensor]:
        """Scores of every batch in ``images``; ``g_arch`` conditions all of them, or, as a list,
        each batch on its own sub-network (the sandwich rule's several per step)."""
        archs = list(g_arch) if isinstance(g_arch, (list, tuple)) else [g_arch] * len(images)
        if len(archs) != len(images):
            raise ValueError(f"{len(images)} image batches but {len(archs)} g_arch values")
        out = []
        for x, arch in zip(images, archs, strict=True):
            if x.shape[0] % min(x.shape[0], STDDEV_GROUP):
                raise ValueError(f"batch {x.shape[0]} is not a multiple of the stddev group "
                                 f"size {STDDEV_GROUP}")
            out.append(_undo_groups(self.d(contiguous_groups(x), arch)))
        return out


def _canonical_keys(model: nn.Module) -> dict[str, str]:
    """{key as an unmodulated model would name it: actual key} (AdaptiveModulate skipped)."""
    rename: dict[str, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, ConvLayer):
            role = 0
            for idx, child in module.named_children():
                if isinstance(child, AdaptiveModulate):
                    continue
                rename[f"{name}.{idx}."] = f"{name}.{role}."
                role += 1
    out = {}
    for key in model.state_dict():
        canon = key
        for actual_prefix, role_prefix in rename.items():
            if key.startswith(actual_prefix):
                canon = role_prefix + key[len(actual_prefix):]
                break
        out[canon] = key
    return out


def _multi_name_for_single(key: str) -> str:
    """``Discriminator`` key -> the ``DiscriminatorMultiRes`` (canonical) key it corresponds to."""
    m = re.match(r"convs\.(\d+)\.(.*)", key)
    if not m:
        return key  # final_conv.*, final_linear.*
    i, rest = int(m.group(1)), m.group(2)
    return f"convs.0.{rest}" if i == 0 else f"blocks.{i - 1}.{rest}"


@torch.no_grad()
def init_from_single_res(d: DiscriminatorMultiRes,
                         single_sd: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """Copy a single-resolution D's weights where shapes allow; {'copied': [...], 'skipped': [...]}.

    Also accepts an unmodulated ``DiscriminatorMultiRes`` state_dict (stage 1 -> stage 2)."""
    canon = _canonical_keys(d)
    target = d.state_dict()
    # A multi-resolution state_dict (stage 1's, for stage 2) already has the multi-res names.
    multi = any(k.startswith("blocks.") for k in single_sd)
    copied, skipped = [], []
    for key, value in single_sd.items():
        actual = canon.get(key if multi else _multi_name_for_single(key))
        if actual is None or tuple(target[actual].shape) != tuple(value.shape):
            skipped.append(key)
            continue
        target[actual].copy_(value.to(target[actual].dtype))
        copied.append(actual)
    return {"copied": copied, "skipped": skipped}
