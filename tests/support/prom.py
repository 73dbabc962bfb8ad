"""Prometheus text as numbers a test can subtract: scrape before, act, scrape after."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, keyed by its name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much one sample moved (a sample not there yet counts as 0)."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of a sample over every label set that includes ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, keys), v in found.items() if n == name and wanted <= set(keys))
