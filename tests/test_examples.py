"""The examples a newcomer runs first keep working (the OCR one needs Pillow and a download: not here)."""
import os
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def run(script):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, script)], capture_output=True, text=True,
                          timeout=600)


def test_quickstart():
    r = run("quickstart.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1. Model is successfully loaded!" in r.stdout and "agreement: max|diff| / max|ref|" in r.stdout


def test_quantization_walkthrough():
    r = run("quantization.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "INT8" in r.stdout and "not inference time" in r.stdout
