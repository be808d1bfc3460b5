"""The Anycost image encoder: ResNet-50 features -> W+ codes (released ``encoder_<config>.pt``).

Keys follow torchvision's ResNet-50 plus ``fc`` [n_style * style_dim, 2048] and a buffer
``mean_latent`` [style_dim] added to every slot. Weights are never downloaded here.
Tensor legend: N batch, L n_style, S style_dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50

#: The released encoder was trained on 256x256 inputs; other sizes are resized first. An encoder
#: trained at another size (``python -m worker.train encoder --input-size``) records it in its
#: file (``'input_size'`` beside ``'state_dict'``), and ``load_encoder`` builds it with that size.
INPUT_SIZE = 256


class Encoder(nn.Module):
    """ResNet-50 regressor from an aligned face image to a W+ latent code."""

    def __init__(self, n_style: int = 18, style_dim: int = 512, input_size: int = INPUT_SIZE):
        """n_style: W+ slots of the matching generator (18 at 1024 px). style_dim: width of w.
        input_size: the side images are resized to before the ResNet (256 for the released
        files; smaller sizes train an encoder for a small model on a CPU in seconds)."""
        super().__init__()
        self.n_style = n_style
        self.style_dim = style_dim
        self.input_size = int(input_size)
        backbone = resnet50(weights=None)
        self.conv1 = backbone.conv1
        self.bn1 = backbone.bn1
        self.relu = backbone.relu
        self.maxpool = backbone.maxpool
        self.layer1 = backbone.layer1
        self.layer2 = backbone.layer2
        self.layer3 = backbone.layer3
        self.layer4 = backbone.layer4
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(backbone.fc.in_features, n_style * style_dim)
        self.register_buffer("mean_latent", torch.zeros(style_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 3, H, W] in [-1, 1] -> W+: [N, L, S]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected [N, 3, H, W] images, got {tuple(x.shape)}")
        size = self.input_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)  # [N, 2048]
        x = self.fc(x).view(x.shape[0], self.n_style, self.style_dim)
        return x + self.mean_latent.view(1, 1, -1)
