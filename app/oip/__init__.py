"""The Open Inference Protocol's model contract, shared by its REST (app/v2) and gRPC (app/grpc)
adapters: the tensor names, the shapes a request may have, and the BYTES and FP32 encodings."""
