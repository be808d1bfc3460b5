"""Importing NVIDIA's published StyleGAN2 networks (ADA-pytorch and TensorFlow pickles), safely.

``unpickle``: the allow-list unpickler (nothing in a file is executed); ``convert``: NVIDIA
names/layouts -> ours; ``tf``: the TensorFlow release renamed to ADA names; ``importer``:
``import_nvidia`` (``python -m worker.anycost.weights import-nvidia FILE.pkl``).
"""
