"""Tests of the bureau's statistics."""
