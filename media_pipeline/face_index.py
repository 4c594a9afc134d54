"""1:N face search: one enrolment against every reference face of one model, as one matrix.

A ``ReferenceIndex`` holds the encodings of one ``FaceModel`` in a float32 matrix (rows grow
by doubling) with their reference and trainee ids, and answers "which references score
within this threshold of that face?" with one matrix-vector product: about 10 ms for 100,000
references of 512 numbers on one core (``make bench``). It only holds numbers; the caller
decides which references belong in it and confirms what it finds against the database.
Not thread-safe: the caller locks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from media_pipeline.face_models import Encoding, FaceModel

__all__ = ["Candidate", "ReferenceIndex"]

_INITIAL_ROWS = 1024


@dataclass(frozen=True, slots=True)
class Candidate:
    reference_id: int
    user_id: int
    score: float


class ReferenceIndex:
    def __init__(self, model: FaceModel) -> None:
        self.model = model
        self._matrix = np.zeros((_INITIAL_ROWS, model.size), dtype=np.float32)
        self._references = np.zeros(_INITIAL_ROWS, dtype=np.int64)
        self._users = np.zeros(_INITIAL_ROWS, dtype=np.int64)
        self._live = np.zeros(_INITIAL_ROWS, dtype=bool)
        self._row_of: dict[int, int] = {}
        self._rows = 0

    def __len__(self) -> int:
        return int(self._live[: self._rows].sum())

    def __contains__(self, reference_id: int) -> bool:
        row = self._row_of.get(reference_id)
        return row is not None and bool(self._live[row])

    def put(self, reference_id: int, user_id: int, encoding: Encoding) -> None:
        """Add a reference, or replace its encoding."""
        vector = self.model.check_encoding(encoding)
        row = self._row_of.get(reference_id)
        if row is None:
            row = self._rows
            if row == len(self._matrix):
                self._grow()
            self._rows += 1
            self._row_of[reference_id] = row
        self._matrix[row] = vector
        self._references[row] = reference_id
        self._users[row] = user_id
        self._live[row] = True

    def drop(self, reference_ids: Iterable[int]) -> None:
        for reference_id in reference_ids:
            row = self._row_of.get(reference_id)
            if row is not None:
                self._live[row] = False

    def search(
        self, encoding: Encoding, *, threshold: float, exclude_user: int | None, limit: int
    ) -> list[Candidate]:
        """The references within ``threshold`` of ``encoding`` (in the model's terms), closest
        first, at most ``limit``, leaving out ``exclude_user``'s own."""
        if self._rows == 0:
            return []
        scores = self.model.scores(self._matrix[: self._rows], encoding)
        hits = self._live[: self._rows] & self.model.within(scores, threshold)
        if exclude_user is not None:
            hits &= self._users[: self._rows] != exclude_user
        rows = np.flatnonzero(hits)
        ordered = rows[self.model.closest_first(scores[rows])[:limit]]
        return [
            Candidate(int(self._references[row]), int(self._users[row]), float(scores[row]))
            for row in ordered
        ]

    def _grow(self) -> None:
        size = len(self._matrix) * 2
        self._matrix = _resized(self._matrix, size)
        self._references = _resized(self._references, size)
        self._users = _resized(self._users, size)
        self._live = _resized(self._live, size)


def _resized(array: np.ndarray, rows: int) -> np.ndarray:
    grown = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
