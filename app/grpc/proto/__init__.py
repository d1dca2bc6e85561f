"""The gRPC protocol files (the .proto) and the message modules protoc makes from them
(scripts/grpc_stubs.sh); shipped in the package so clients can generate stubs from it."""
