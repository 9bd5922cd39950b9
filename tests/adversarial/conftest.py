"""Fixtures of the adversarial suite: a tiny saved model and a local MCQA file."""

from tests.pipeline.test_fit_cli import setup  # noqa: F401 (fixture)
