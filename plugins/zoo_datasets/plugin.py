"""Registers this plugin's entries. Imports no model code."""

import zoo  # noqa: F401
