"""The process's peak memory, which the report records (the bound on large data is on it)."""

import resource


def peak_rss_mb() -> float:
    """Peak resident set size so far, in MB of 10^6 bytes (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, 1)
