"""Measuring a generator: FID (realism), PPL (smoothness of W) and preview/final consistency.

Modules: ``common`` (errors, seeded samples, cost lists), ``inception`` (the offline TorchScript
Inception with NVIDIA's preprocessing), ``frechet`` (feature statistics, the Fréchet distance,
``.npz`` statistics files), ``fid_reference`` (a data set's statistics, cached), ``perceptual``
(LPIPS from files on disk), ``ppl_distance`` (PPL's hash-checked LPIPS network: NVIDIA's
``vgg16.pt`` or the lpips package's), ``fid``, ``ppl``, ``consistency`` (the metrics, with their
protocols), ``runner`` (one evaluation from its parameters), ``jobs`` (an evaluation row of the
database run by a worker) and ``__main__`` (the command line: ``python -m worker.evaluate
fid|ppl|consistency --model NAME``).
Nothing here downloads: every file a metric needs is found on disk or the metric fails with a
stable error code (``shared.codes.errors``) and a message naming the file and where it goes.
"""
