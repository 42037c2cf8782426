"""Scheduling plugins, one per file: queue sorts, filters, scores and admission checks."""
