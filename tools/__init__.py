"""Developer tools (virtual printer farm, benchmarks)."""
