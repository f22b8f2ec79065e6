"""Registers the harness metrics."""

import zoo  # noqa: F401
