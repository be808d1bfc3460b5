"""Losses of the distillation stages and of encoder training.

Reduction: every loss is a MEAN over this process's samples. DistributedDataParallel averages
gradients over processes, and all processes hold equally many samples, so a step on P processes
with b samples each computes the gradient of the mean over all P * b samples: exactly the
single-process step with batch P * b (the minibatch-stddev groups are arranged to agree too, see
``worker.train.critic``). Sums would instead scale the gradient with the batch per process.

Distillation and encoder image losses: MSE, plus LPIPS as the Anycost paper uses it: VGG on
images box-filtered to at most 256 px (``PERCEPTUAL_SIDE``), when the ``lpips`` package's heads
and torchvision's VGG16 file are on disk (``ANYCOST_LPIPS_VGG_PATH``, default torch hub's
folder; ``worker.anycost.perceptual`` loads them, nothing is downloaded). Fallback, said once
in the run's first line (``perceptual_note``): LPIPS(alex) when only AlexNet's file is there,
else MSE alone. LPIPS needs a few pixels: VGG is used from 16 px, AlexNet from 32 px; smaller
images get MSE only.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import autograd

from worker.anycost.perceptual import load_lpips, lpips_available
from worker.anycost.sampling import downsample

#: LPIPS compares images box-filtered to at most this width (the paper's 256 px).
PERCEPTUAL_SIDE = 256
#: The smallest width each LPIPS network is applied to.
MIN_SIDE = {"vgg": 16, "alex": 32}


def d_logistic(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic GAN loss of the discriminator."""
    return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()


def g_nonsaturating(fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic GAN loss of the generator."""
    return F.softplus(-fake_scores).mean()


def r1_penalty(real_scores: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Mean over samples of |dD(x)/dx|^2 at real images (``real_images`` requires grad)."""
    (grad,) = autograd.grad(real_scores.sum(), real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def perceptual_model():
    """The LPIPS net (vgg, else alex) when it is usable offline, else None."""
    name = perceptual_name()
    if name is None:
        return None
    return load_lpips(name, _vgg_path() if name == "vgg" else "")


@functools.lru_cache(maxsize=1)
def _vgg_path() -> str:
    from shared.platform.settings import Settings

    return Settings.from_env().lpips_vgg_path


@functools.lru_cache(maxsize=1)
def perceptual_name() -> str | None:
    """'vgg', 'alex' or None: which LPIPS the image losses use on this machine."""
    if lpips_available("vgg", _vgg_path()):
        return "vgg"
    return "alex" if lpips_available("alex") else None


def perceptual_note() -> str:
    name = perceptual_name()
    if name == "vgg":
        return f"image loss: MSE + LPIPS(vgg) at <= {PERCEPTUAL_SIDE} px"
    if name == "alex":
        return (f"image loss: MSE + LPIPS(alex) at <= {PERCEPTUAL_SIDE} px (the paper's VGG "
                "needs torchvision's vgg16-397923af.pth on disk: ANYCOST_LPIPS_VGG_PATH)")
    return ("image loss: MSE only (LPIPS needs the lpips package and torchvision's VGG16 or "
            "AlexNet weights on disk; nothing is downloaded)")


def image_distance(student: torch.Tensor, teacher: torch.Tensor,
                   use_lpips: bool = True) -> dict[str, torch.Tensor]:
    """{'mse': ..., 'lpips': ...?} between two image batches in [-1, 1] (mean reductions)."""
    out = {"mse": F.mse_loss(student, teacher)}
    model = perceptual_model() if use_lpips else None
    if model is not None and student.shape[-1] >= MIN_SIDE[perceptual_name()]:
        model.to(student.device)
        side = min(student.shape[-1], PERCEPTUAL_SIDE)
        out["lpips"] = model(downsample(student, side), downsample(teacher, side)).mean()
    return out


