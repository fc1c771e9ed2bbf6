"""The ``skipblocks`` console script: the same command line as ``python -m skipblocks``."""
from .__main__ import main

__all__ = ["main"]
