"""The GPU side: Celery workers, the Anycost model package, evaluation and training.

Importing it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment says otherwise, before torch
loads its OpenMP runtime (GNU libgomp reads it once, at load). By default idle OpenMP threads
spin; on a host whose cores are also busy with other processes (the web app, a second worker,
the tests) the spinning threads take the cores from the thread doing the work, and every small
parallel op waits a time slice: a tiny-model preview pass took 520 ms on 2 threads of a
2-core host under load against 28 ms with passive waiting (18.5 ms on 1 thread). Where the
worker has its cores to itself, set ``OMP_WAIT_POLICY=ACTIVE`` to keep the spinning.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
