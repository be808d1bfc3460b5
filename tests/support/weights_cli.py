"""Helpers of the weights-import tests: the weights CLI in-process, and a pickle payload that
would run code if anything unpickled it (hostile files must be refused with nothing run)."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture
def cli(capsys):
    """The weights CLI in-process: ``cli(*argv)`` -> (exit code, stdout, stderr)."""
    from worker.anycost.weights.cli import run

    def call(*args: str) -> subprocess.CompletedProcess:
        code = run(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return call


class Reduce:
    """Pickles as ``func(*args)``: the call a hostile file hopes an unpickler makes."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args
