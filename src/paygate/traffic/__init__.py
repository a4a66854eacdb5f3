"""Traffic control on the call path: cache, circuit breaker, timeouts, concurrency limits, priority
queue, retries, dedup, canary, mirror and tool aliases (docs/traffic.md). `chain.py` is the seam the
dispatcher calls through; each control is one stage in its own module."""
