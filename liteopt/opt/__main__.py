"""`python -m liteopt.opt ...` is the same as `opt ...`."""
from .cli import entry

entry()
