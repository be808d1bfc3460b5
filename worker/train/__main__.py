"""``torchrun --nproc_per_node N -m worker.train STAGE ...``: see ``worker.train.cli``."""

import sys

from worker.train.cli import main

sys.exit(main())
