#!/usr/bin/env bash
# Regenerate liteopt/converters/tensorflow/proto/*_pb2.py from the .proto subset of TensorFlow's GraphDef
# (dev tool: pip install grpcio-tools). Compiled from the repository root, so each descriptor's file name is
# liteopt/converters/tensorflow/proto/<name>.proto and never clashes with a real TensorFlow's.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m grpc_tools.protoc -I. --python_out=. liteopt/converters/tensorflow/proto/*.proto
echo "generated $(ls liteopt/converters/tensorflow/proto/*_pb2.py | wc -l) modules with $(python3 -m grpc_tools.protoc --version)"
