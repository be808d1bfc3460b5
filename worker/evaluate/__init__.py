"""Measuring a generator: FID (realism), PPL (smoothness of W) and preview/final consistency.

Modules: ``common`` (errors, seeded samples, cost lists), ``inception`` (the offline TorchScript
Inception used for FID), ``perceptual`` (LPIPS from files on disk), ``fid``, ``ppl``,
``consistency`` (the metrics), ``jobs`` (an evaluation row of the database run by a worker) and
``__main__`` (the command line: ``python -m worker.evaluate fid|ppl|consistency --model NAME``).
Nothing here downloads: every file a metric needs is found on disk or the metric fails with a
stable error code (``shared.codes.errors``) and a message naming the file and where it goes.
"""
