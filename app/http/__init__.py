"""HTTP plumbing every protocol shares: middleware, API keys, error bodies, dependencies, shutdown."""
