"""The model lifecycle: which versions are loaded, verified, routed and swapped (control, registry,
readiness), and the service's start and drain that every protocol shares."""
