"""Making Anycost weights: distillation of a StyleGAN2 into an Anycost generator, and encoder
training, data-parallel on ``torchrun`` (``python -m worker.train --help``).

Stages: ``multires`` (stage 1: lower resolutions from intermediate RGB outputs), ``channels``
(stage 2: channel-sorted sub-networks, architecture-conditioned discriminator) and ``encoder``
(ResNet-50 W+ regressor on generator samples). See README "Training Anycost weights".
"""
