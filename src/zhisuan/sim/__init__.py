"""Trace-driven simulator: replays traces through the same scheduler with a virtual clock."""
