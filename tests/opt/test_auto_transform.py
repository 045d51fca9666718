"""auto_transform.sh: one command from a source model to a checked .nb."""
from __future__ import annotations

import os
import subprocess
import sys

import onnx

from models import tiny_cnn

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "auto_transform.sh")


def run(*args):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env)


def test_usage_and_bad_arguments():
    r = run()
    assert r.returncode == 1 and "Usage" in r.stdout
    r = run("--framework=mxnet")
    assert r.returncode == 1 and "mxnet" in r.stderr
    r = run("--framework=caffe", "--prototxt=x.prototxt")
    assert r.returncode == 1 and "--weight" in r.stderr
    r = run("--bogus=1")
    assert r.returncode == 1 and "--bogus" in r.stderr


def test_onnx_convert_and_verify(tmp_path):
    src = tmp_path / "m.onnx"
    onnx.save(tiny_cnn(), str(src))
    r = run("--framework=onnx", f"--model={src}", f"--optimize_out={tmp_path / 'out'}", "--valid_targets=arm,ref")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2. Model is optimized and saved into" in r.stdout and "verify: OK" in r.stdout
    assert (tmp_path / "out.nb").exists()


def test_failure_is_non_zero_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    r = run("--framework=onnx", f"--model={bad}", f"--optimize_out={tmp_path / 'out'}")
    assert r.returncode != 0 and str(bad) in r.stderr and not (tmp_path / "out.nb").exists()
