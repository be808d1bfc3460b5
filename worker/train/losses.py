"""Losses of the distillation stages and of encoder training.

Reduction: every loss is a MEAN over this process's samples. DistributedDataParallel averages
gradients over processes, and all processes hold equally many samples, so a step on P processes
with b samples each computes the gradient of the mean over all P * b samples: exactly the
single-process step with batch P * b (the minibatch-stddev groups are arranged to agree too, see
``worker.train.critic``). Sums would instead scale the gradient with the batch per process.

Distillation: MSE to the teacher's image, plus LPIPS(alex) when the ``lpips`` package and all of
its weights are on disk (``worker.anycost.perceptual`` decides; nothing is downloaded). Without it the
run says so once (``perceptual_note``) and trains on MSE alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import autograd

from worker.anycost.perceptual import optional_lpips


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
    """The LPIPS net when it is usable offline, else None."""
    return optional_lpips("alex")


def perceptual_note() -> str:
    if perceptual_model() is not None:
        return "image loss: MSE + LPIPS(alex)"
    return ("image loss: MSE only (LPIPS needs the lpips package and its alex weights "
            "on disk; nothing is downloaded)")


def image_distance(student: torch.Tensor, teacher: torch.Tensor,
                   use_lpips: bool = True) -> dict[str, torch.Tensor]:
    """{'mse': ..., 'lpips': ...?} between two image batches in [-1, 1] (mean reductions)."""
    out = {"mse": F.mse_loss(student, teacher)}
    model = perceptual_model() if use_lpips else None
    if model is not None and student.shape[-1] >= 32:  # alexnet needs a few pixels
        model.to(student.device)
        out["lpips"] = model(student, teacher).mean()
    return out


def downsample_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Area-average [N, 3, R, R] down to ``resolution`` (identity at the same size)."""
    if images.shape[-1] == resolution:
        return images
    return F.adaptive_avg_pool2d(images, resolution)
