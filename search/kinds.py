"""Every kind of job this archsearch ships, registered: the controller asks a study's kind through here.

A study's trials are trained by the objective of its kind (`archsearch.pool.JobKind`). The pool finds a
kind by the study's `archsearch_kind` attribute among the registered ones; importing this module registers
the search (`archsearch.pool.SEARCH`) and the sensitivity analysis's runs (`archsearch.sensitivity.SENSITIVITY`).
A kind of one's own is one `JobKind` subclass passed to `archsearch.pool.register_job_kind`.
"""

from __future__ import annotations

from archsearch.pool import SEARCH, JobKind, job_kind, register_job_kind
from archsearch.sensitivity import SENSITIVITY

__all__ = ["KINDS", "JobKind", "job_kind", "register_job_kind"]

KINDS = (SEARCH, SENSITIVITY)
