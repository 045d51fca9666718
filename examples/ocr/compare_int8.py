"""Does the INT8 PP-OCRv4 recogniser read what the float one reads? 20 rendered text lines, both models on
the liteopt runtime, text compared line by line.

    python3 examples/ocr/compare_int8.py
"""
from __future__ import annotations

import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ocr_demo import OUT, fetch_models, recognise  # noqa: E402

WORDS = ("the quick brown fox jumps over lazy dog model file small fast numba paddle lite opt python runtime "
         "kernel graph tensor convert optimize quantize").split()


def main() -> int:
    from liteopt.opt import optimize
    from liteopt.runtime import load
    src = fetch_models()["rec"]
    os.makedirs(OUT, exist_ok=True)
    fp = load(optimize(model_file=src, optimize_out=os.path.join(OUT, "rec_fp32")).path)
    q8 = load(optimize(model_file=src, optimize_out=os.path.join(OUT, "rec_int8"), quant_model=True,
                       quant_type="QUANT_INT8").path)
    charset = ["blank"] + fp.metadata["character"].splitlines() + [" "]
    rng = np.random.default_rng(0)
    font = ImageFont.load_default(size=32)
    same = exact = 0
    for _ in range(20):
        line = " ".join(rng.choice(WORDS, 3)) + f" {rng.integers(10, 999)}"
        img = Image.new("RGB", (20 + 18 * len(line), 48), "white")
        ImageDraw.Draw(img).text((10, 6), line, fill="black", font=font)
        a = np.asarray(img)
        t_fp, t_q8 = recognise(fp, a, charset)[0], recognise(q8, a, charset)[0]
        same += t_fp == t_q8
        exact += t_q8 == line
        print(f"{'=' if t_fp == t_q8 else '!'} {line!r:34} float {t_fp!r:34} int8 {t_q8!r}")
    print(f"INT8 reads the same text as float32 on {same} of 20 lines ({exact} of 20 exactly as rendered)")
    return 0 if same >= 19 else 1


if __name__ == "__main__":
    sys.exit(main())
