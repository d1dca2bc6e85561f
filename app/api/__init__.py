"""The project's own REST API: /classify (and its fast path), /explain, /model, health, metrics."""
