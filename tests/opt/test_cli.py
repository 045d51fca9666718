"""The `opt` command as a user meets it: flags, messages, exit codes, and never a partial file."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

from helpers import make_model
from models import tiny_cnn

from liteopt.opt.cli import run


@pytest.fixture()
def model_dir(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    onnx.save(tiny_cnn(), str(d / "model.onnx"))
    return d


def opt(capsys, *args):
    code = run([str(a) for a in args])
    o = capsys.readouterr()
    assert "Traceback" not in o.out + o.err
    return code, o.out, o.err


def no_nb_written(d):
    return not [f for f in os.listdir(d) if f.endswith(".nb") or ".tmp" in f]


def test_no_arguments_prints_help(capsys):
    code, out, _ = opt(capsys)
    assert code == 0 and "--model_dir" in out and "--optimize_out" in out


def test_version(capsys):
    code, out, _ = opt(capsys, "--version")
    assert code == 0 and "0.1.0" in out


def test_success_prints_paddle_lines_and_appends_nb(capsys, model_dir, tmp_path):
    code, out, err = opt(capsys, f"--model_dir={model_dir}", f"--optimize_out={tmp_path / 'out'}",
                         "--valid_targets=arm,ref")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "1. Model is successfully loaded!"
    assert lines[1] == f"2. Model is optimized and saved into {tmp_path / 'out.nb'} successfully"
    assert (tmp_path / "out.nb").exists()
    code, out, err = opt(capsys, "--model_file", model_dir / "model.onnx", "--optimize_out", tmp_path / "o2.nb",
                         "--valid_targets=ref")
    assert code == 0 and (tmp_path / "o2.nb").exists() and not (tmp_path / "o2.nb.nb").exists()


def test_report_json(capsys, model_dir, tmp_path):
    rep = tmp_path / "r.json"
    code, _, err = opt(capsys, f"--model_dir={model_dir}", f"--optimize_out={tmp_path / 'o'}",
                       "--valid_targets=cpu,ref", f"--report={rep}")
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert r["ops_before"]["conv2d"] == 1 and r["file_size"] == os.path.getsize(tmp_path / "o.nb")
    assert {p["name"] for p in r["passes"]} >= {"pick_kernels"}


def test_unsupported_ops_listed_all_at_once(capsys, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r"),
             helper.make_node("Det", ["a"], ["b"], name="det1"),
             helper.make_node("Unique", ["b"], ["c"], name="uniq"),
             helper.make_node("Det", ["c"], ["y"], name="det2")]
    m = make_model(nodes, {"x": (np.float32, [2, 2])}, ["y"], output_shapes={"y": (np.float32, [])})
    src = tmp_path / "bad.onnx"
    onnx.save(m, str(src))
    code, out, err = opt(capsys, "--model_file", src, "--optimize_out", tmp_path / "bad")
    assert code == 1
    assert "These unsupported ops are: 'Det, Unique'" in err
    assert "det1" in err and "det2" in err and "uniq" in err
    assert no_nb_written(tmp_path)


@pytest.mark.parametrize("args,expect", [
    (["--model_dir=/no/such/dir", "--optimize_out=x"], "/no/such/dir"),
    (["--model_file=/no/such.onnx", "--optimize_out=x"], "/no/such.onnx"),
    (["--model_dir={d}", "--optimize_out=x", "--valid_targets=gpu"], "valid_targets"),
    (["--model_dir={d}", "--optimize_out=x", "--input_shape=x:1,3,a"], "--input_shape"),
    (["--model_dir={d}", "--optimize_out=x", "--input_shape=nope:1,3,16,16"], "nope"),
    (["--model_dir={d}", "--optimize_out=x", "--input_shape=x:1,3,16"], "rank"),
    (["--model_dir={d}", "--optimize_out=x", "--input_shape=x:1,4,16,16"], "fixed"),
    (["--model_dir={d}", "--optimize_out=x", "--optimize_out_type=protobuf"], "protobuf"),
    (["--model_dir={d}", "--optimize_out=/no/such/dir/out"], "--optimize_out"),
    (["--model_dir={d}"], "--optimize_out"),
    (["--optimize_out=x"], "no model"),
    (["--model_dir={d}", "--optimize_out=x", "--print_all_ops=maybe"], "print_all_ops"),
    (["--modeldir=x"], "unknown flag"),
])
def test_bad_flags_name_the_culprit(capsys, model_dir, tmp_path, args, expect):
    os.chdir(tmp_path)
    code, out, err = opt(capsys, *[a.format(d=model_dir) for a in args])
    assert code != 0
    assert expect in err, err
    assert no_nb_written(tmp_path)


def test_model_dir_with_no_model_or_two_models(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    code, _, err = opt(capsys, f"--model_dir={empty}", f"--optimize_out={tmp_path / 'o'}")
    assert code == 1 and "no model found" in err and str(empty) in err
    two = tmp_path / "two"
    two.mkdir()
    onnx.save(tiny_cnn(), str(two / "a.onnx"))
    onnx.save(tiny_cnn(), str(two / "b.onnx"))
    code, _, err = opt(capsys, f"--model_dir={two}", f"--optimize_out={tmp_path / 'o'}")
    assert code == 1 and "a.onnx" in err and "b.onnx" in err
    assert no_nb_written(tmp_path)


def test_corrupt_and_truncated_onnx(capsys, model_dir, tmp_path):
    data = (model_dir / "model.onnx").read_bytes()
    for i, bad in enumerate([data[: len(data) // 2], data[:10], b"\x00" * 64, b"hello world"]):
        p = tmp_path / f"bad{i}.onnx"
        p.write_bytes(bad)
        code, _, err = opt(capsys, "--model_file", p, "--optimize_out", tmp_path / f"o{i}")
        assert code == 1 and str(p) in err, err
    assert no_nb_written(tmp_path)


def test_random_onnx_corruption_never_escapes(model_dir, tmp_path):
    """Hundreds of corrupted models: each converts or fails with our error; never another exception."""
    from liteopt.ir.errors import LiteoptError
    from liteopt.opt import optimize
    data = (model_dir / "model.onnx").read_bytes()
    rng = np.random.default_rng(3)
    outcomes = {"ok": 0, "error": 0}
    for i in range(200):
        buf = bytearray(data)
        if i % 3 == 0:
            buf = buf[: int(rng.integers(0, len(buf)))]
        else:
            for _ in range(int(rng.integers(1, 6))):
                buf[int(rng.integers(0, len(buf)))] = int(rng.integers(0, 256))
        p = tmp_path / "c.onnx"
        p.write_bytes(bytes(buf))
        try:
            optimize(model_file=str(p), optimize_out=str(tmp_path / "c"), valid_targets="cpu,ref")
            outcomes["ok"] += 1
        except LiteoptError as e:
            assert str(p) in str(e) or "node" in str(e) or "input" in str(e), str(e)
            outcomes["error"] += 1
    assert outcomes["error"] > 50


def test_print_ops_tables(capsys, model_dir):
    code, out, _ = opt(capsys, "--print_all_ops=true")
    assert code == 0 and "conv2d" in out and "relu" in out
    code, out, _ = opt(capsys, "--print_all_ops_in_md_format")
    assert code == 0 and "| conv2d |" in out
    code, out, _ = opt(capsys, "--print_supported_ops=true", "--valid_targets=ref")
    assert code == 0 and "relu" in out
    code, out, _ = opt(capsys, "--print_model_ops=true", f"--model_dir={model_dir}", "--valid_targets=ref")
    assert code == 0 and "conv2d" in out and "pool2d" in out


def test_console_script_end_to_end(model_dir, tmp_path):
    """The installed command, as a user runs it (one subprocess: it is slow to start)."""
    r = subprocess.run([sys.executable, "-m", "liteopt.opt", f"--model_dir={model_dir}",
                        f"--optimize_out={tmp_path / 'cli'}", "--valid_targets=cpu,ref"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "2. Model is optimized and saved into" in r.stdout and (tmp_path / "cli.nb").exists()
