"""Texts from concurrent requests, batched by length and run on an engine (the queue and runner)."""
