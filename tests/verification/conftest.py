"""Fixtures shared with the other study tests (tests/study.py)."""

from tests.study import study, study_without_face  # noqa: F401
