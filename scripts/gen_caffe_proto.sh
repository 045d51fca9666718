#!/usr/bin/env bash
# Regenerate liteopt/converters/caffe/caffe_pb2.py from caffe.proto (dev tool: pip install grpcio-tools).
set -euo pipefail
cd "$(dirname "$0")/../liteopt/converters/caffe"
python3 -m grpc_tools.protoc -I. --python_out=. caffe.proto
echo "generated caffe_pb2.py with $(python3 -m grpc_tools.protoc --version)"
