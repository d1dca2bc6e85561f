"""The Open Inference Protocol (KServe v2 / Triton) REST adapter under /v2."""
