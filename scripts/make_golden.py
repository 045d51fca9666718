"""Regenerate tests/data/tiny_cnn.nb, the golden file that catches accidental .nb schema changes."""
import os
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests"))

from helpers import convert  # noqa: E402
from models import tiny_cnn  # noqa: E402

d = tempfile.mkdtemp()
src = convert(tiny_cnn(), d, valid_targets="cpu,ref")
dst = os.path.join(here, "..", "tests", "data", "tiny_cnn.nb")
os.replace(src, dst)
print(f"wrote {os.path.normpath(dst)} ({os.path.getsize(dst)} bytes)")
