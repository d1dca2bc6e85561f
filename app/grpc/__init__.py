"""The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, as tritonclient.grpc
and KServe's gRPC client call it) and the standard `grpc.health.v1.Health`, served on GRPC_PORT in
the same process and event loop as REST, through the same classify flow."""
