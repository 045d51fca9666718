"""The optimizer front door: the `opt` CLI (cli.py) and its Python API (`Opt`, `optimize`)."""
from .api import Opt, OptError, OptResult, optimize

__all__ = ["Opt", "OptError", "OptResult", "optimize"]
