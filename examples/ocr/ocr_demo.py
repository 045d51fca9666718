"""A complete OCR pipeline on the liteopt runtime alone: PP-OCRv4 detector + direction classifier +
recogniser (from the `rapidocr-onnxruntime` wheel), converted to INT8 .nb files, with numpy pre/post-
processing (DB box extraction, crop, direction check, CTC decoding with the dictionary stored in the
recogniser's metadata). It renders its own test image with Pillow and prints what it reads.

    python3 -m pip install pillow && python3 examples/ocr/ocr_demo.py [--fp32] [--image my.png]
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np

WHEEL = "rapidocr-onnxruntime==1.4.4"
MODELS = {"det": "ch_PP-OCRv4_det_infer.onnx", "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
          "rec": "ch_PP-OCRv4_rec_infer.onnx"}
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "liteopt-models")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
LINES = ["Hello liteopt 2026", "PP-OCRv4 on numba", "Paddle Lite opt in Python", "Small files, fast models"]


# --- models --------------------------------------------------------------------------------------

def fetch_models(cache: str = CACHE) -> dict[str, str]:
    """The three ONNX models, extracted from the rapidocr-onnxruntime wheel (downloaded once with pip)."""
    paths = {k: os.path.join(cache, v) for k, v in MODELS.items()}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", d, WHEEL], check=True)
        with zipfile.ZipFile(glob.glob(os.path.join(d, "*.whl"))[0]) as z:
            for k, name in MODELS.items():
                with z.open(f"rapidocr_onnxruntime/models/{name}") as src, open(paths[k], "wb") as dst:
                    dst.write(src.read())
    return paths


def convert_models(onnx_paths: dict[str, str], quant: bool) -> dict[str, str]:
    """Convert each model to a .nb with liteopt's opt (INT8 weights unless --fp32)."""
    from liteopt.opt import optimize
    os.makedirs(OUT, exist_ok=True)
    out = {}
    for k, src in onnx_paths.items():
        dst = os.path.join(OUT, f"{k}{'_int8' if quant else ''}")
        r = optimize(model_file=src, optimize_out=dst, valid_targets="arm", quant_model=quant,
                     quant_type="QUANT_INT8")
        out[k] = r.path
        print(f"  {k}: {os.path.basename(src)} {os.path.getsize(src) / 1e6:6.2f} MB -> {os.path.basename(r.path)} "
              f"{r.file_size / 1e6:6.2f} MB ({r.file_size / os.path.getsize(src):.0%}), "
              f"{sum(r.ops_before.values())} -> {sum(r.ops_after.values())} ops")
    return out


# --- the test image ----------------------------------------------------------------------------

def render(lines: list[str], path: str) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont
    font = ImageFont.load_default(size=32)
    img = Image.new("RGB", (720, 70 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((30, 30 + 60 * i), line, fill="black", font=font)
    img.save(path)
    return np.asarray(img)


# --- pre/post-processing (numpy) ----------------------------------------------------------------

MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


def resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of an HxWxC uint8/float image (half-pixel centres)."""
    sh, sw = img.shape[0] / h, img.shape[1] / w
    y = np.clip((np.arange(h) + 0.5) * sh - 0.5, 0, img.shape[0] - 1)
    x = np.clip((np.arange(w) + 0.5) * sw - 0.5, 0, img.shape[1] - 1)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, img.shape[0] - 1), np.minimum(x0 + 1, img.shape[1] - 1)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    im = img.astype(np.float32)
    top = im[y0][:, x0] * (1 - fx) + im[y0][:, x1] * fx
    bot = im[y1][:, x0] * (1 - fx) + im[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def detect(det, img: np.ndarray, limit: int = 960, thresh: float = 0.3, box_thresh: float = 0.6,
           unclip: float = 2.0) -> list[tuple[int, int, int, int]]:
    """DB text detection: probability map -> connected regions -> expanded axis-aligned boxes. (DB unclips
    its polygons by 1.5; on axis-aligned boxes 2.0 keeps the small margin the recogniser reads best with.)"""
    from scipy import ndimage
    h, w = img.shape[:2]
    scale = min(1.0, limit / max(h, w))
    rh, rw = max(32, int(round(h * scale / 32)) * 32), max(32, int(round(w * scale / 32)) * 32)
    x = ((resize(img, rh, rw) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
    prob = next(iter(det({det.input_names[0]: x}).values()))[0, 0]
    labels, n = ndimage.label(prob > thresh)
    boxes = []
    for k, sl in enumerate(ndimage.find_objects(labels), 1):
        if sl is None:
            continue
        region = labels[sl] == k
        if region.sum() < 9 or prob[sl][region].mean() < box_thresh:
            continue
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        bh, bw = y1 - y0, x1 - x0
        d = bh * bw * unclip / (2 * (bh + bw))  # DB's unclip distance for a rectangle
        boxes.append((int(max(0, (y0 - d) * h / rh)), int(min(h, (y1 + d) * h / rh)),
                      int(max(0, (x0 - d) * w / rw)), int(min(w, (x1 + d) * w / rw))))
    return sorted(boxes)


def _line_input(crop: np.ndarray, height: int, width: int | None) -> np.ndarray:
    ratio = crop.shape[1] / crop.shape[0]
    w = int(np.ceil(height * ratio)) if width is None else min(width, int(np.ceil(height * ratio)))
    x = (resize(crop, height, max(w, 1)) / 255.0 - 0.5) / 0.5
    out = np.zeros((3, height, width or w), np.float32)
    out[:, :, :x.shape[1]] = x.transpose(2, 0, 1)
    return out[None]


def upright(cls, crop: np.ndarray, thresh: float = 0.9) -> np.ndarray:
    """The direction classifier: rotate a line by 180 degrees when it reads upside down."""
    p = next(iter(cls({cls.input_names[0]: _line_input(crop, 48, 192)}).values()))[0]
    return crop[::-1, ::-1] if p.argmax() == 1 and p[1] > thresh else crop


def recognise(rec, crop: np.ndarray, charset: list[str]) -> tuple[str, float]:
    """CTC greedy decoding: best class per step, repeats merged, blanks (class 0) dropped."""
    probs = next(iter(rec({rec.input_names[0]: _line_input(crop, 48, None)}).values()))[0]
    best = probs.argmax(1)
    keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
    text = "".join(charset[i] for i in best[keep]).strip()  # blank margins may read as trailing spaces
    return text, float(probs.max(1)[keep].mean()) if keep.any() else 0.0


def read_text(det, cls, rec, img: np.ndarray) -> list[tuple[str, float]]:
    charset = ["blank"] + rec.metadata["character"].splitlines() + [" "]
    return [recognise(rec, upright(cls, img[y0:y1, x0:x1]), charset) for y0, y1, x0, x1 in detect(det, img)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fp32", action="store_true", help="keep float32 weights (default: INT8)")
    ap.add_argument("--image", help="read this image instead of the rendered one")
    args = ap.parse_args()
    from liteopt.runtime import load

    print("1. fetching the PP-OCR models (once) and converting them with opt:")
    nb = convert_models(fetch_models(), quant=not args.fp32)
    if args.image:
        from PIL import Image
        img, expected = np.asarray(Image.open(args.image).convert("RGB")), None
    else:
        path = os.path.join(OUT, "text.png")
        img, expected = render(LINES, path), LINES
        print(f"2. rendered {len(LINES)} lines of text into {path}")
    det, cls, rec = (load(nb[k]) for k in ("det", "cls", "rec"))
    t0 = time.perf_counter()
    found = read_text(det, cls, rec, img)
    print(f"3. read in {time.perf_counter() - t0:.2f} s on the liteopt runtime:")
    for text, conf in found:
        print(f"   {text!r}  ({conf:.3f})")
    if expected is None:
        return 0
    hits = sum(t == e for (t, _), e in zip(found, expected))
    print(f"{hits} of {len(expected)} lines read exactly")
    return 0 if hits == len(expected) else 1


if __name__ == "__main__":
    sys.exit(main())
