#!/usr/bin/env bash
# One step from a Caffe / TensorFlow / ONNX model to an optimized .nb (Paddle Lite's auto_transform.sh flags,
# without x2paddle): runs opt, then checks the .nb against the source framework's own runtime when it is
# installed (onnxruntime, OpenCV < 5, TensorFlow) on random inputs and prints the agreement.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: ./auto_transform.sh --framework=(caffe|tensorflow|onnx) [options]
  --framework=caffe       --prototxt=net.prototxt --weight=net.caffemodel
  --framework=tensorflow  --model=frozen_graph.pb
  --framework=onnx        --model=model.onnx
  --valid_targets=arm            (default arm; cpu, ref; arm/x86/host mean cpu)
  --optimize_out=lite_opt_model  (default lite_opt_model; .nb is appended)
  --quant_model=true --quant_type=QUANT_INT8|QUANT_INT16
  --input_shape=NAME:D0,D1,...   (repeatable)
USAGE
}

framework="" prototxt="" weight="" model="" valid_targets="arm" optimize_out="lite_opt_model"
quant_model="false" quant_type="QUANT_INT16"
shapes=()
[ $# -eq 0 ] && { usage; exit 1; }
for arg in "$@"; do
  case "$arg" in
    --framework=*) framework="${arg#*=}" ;;
    --prototxt=*) prototxt="${arg#*=}" ;;
    --weight=*) weight="${arg#*=}" ;;
    --model=*) model="${arg#*=}" ;;
    --valid_targets=*) valid_targets="${arg#*=}" ;;
    --optimize_out=*) optimize_out="${arg#*=}" ;;
    --quant_model=*) quant_model="${arg#*=}" ;;
    --quant_type=*) quant_type="${arg#*=}" ;;
    --input_shape=*) shapes+=("$arg") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "Error: unknown argument '$arg'" >&2; usage >&2; exit 1 ;;
  esac
done

PY="${PYTHON:-python3}"
case "$framework" in
  caffe)
    [ -n "$prototxt" ] && [ -n "$weight" ] || { echo "Error: --framework=caffe needs --prototxt= and --weight=" >&2; exit 1; }
    src=(--model_file="$prototxt" --param_file="$weight")
    check=(--framework=caffe --prototxt="$prototxt" --weight="$weight") ;;
  tensorflow|onnx)
    [ -n "$model" ] || { echo "Error: --framework=$framework needs --model=" >&2; exit 1; }
    src=(--model_file="$model")
    check=(--framework="$framework" --model="$model") ;;
  "") echo "Error: --framework= is required" >&2; usage >&2; exit 1 ;;
  *) echo "Error: unknown framework '$framework' (caffe, tensorflow or onnx)" >&2; exit 1 ;;
esac

out="${optimize_out%.nb}"
"$PY" -m liteopt.opt "${src[@]}" --optimize_out="$out" --valid_targets="$valid_targets" \
  --quant_model="$quant_model" --quant_type="$quant_type" ${shapes[@]+"${shapes[@]}"}
if [ "$quant_model" = "true" ]; then
  echo "(quantized model: the comparison below shows the quantization error too)"
fi
"$PY" -m liteopt.opt.verify "${check[@]}" --nb="$out.nb" || { [ "$quant_model" = "true" ] && exit 0; exit 1; }
