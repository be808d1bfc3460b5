"""``python -m worker.anycost.weights ...``: the command line of the weights registry (cli.py)."""

import sys

from worker.anycost.weights.cli import run

sys.exit(run())
