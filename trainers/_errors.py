"""The trainers' error types, torch-free so that code which only catches them does not load torch."""

from __future__ import annotations

from archsearch.base import ArchsearchError


class DataError(ArchsearchError, ValueError):
    """Bad data or a bad data specification; the message names the problem, the column and the value."""


class ExportError(ArchsearchError, ValueError):
    """A model that cannot be exported or loaded: a trial that cannot be exported, or a model folder that is
    missing, incomplete or malformed. The message says which and what to do instead."""
