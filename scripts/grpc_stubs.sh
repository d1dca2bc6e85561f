#!/usr/bin/env bash
# Regenerates the gRPC message modules from the .proto files (needs the dev install's
# grpcio-tools). tests/grpc/test_proto.py checks that the committed modules are what this makes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-.}"
python -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" \
  app/grpc/proto/model_config.proto app/grpc/proto/grpc_service.proto
