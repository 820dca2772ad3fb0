"""A streaming drift monitor: bin counts over a rolling window, tested on demand."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

import numpy as np

from serving.drift.counts import Binner, WindowCounts
from serving.drift.profile import DriftProfile
from serving.drift.report import DriftReport, evaluate

DEFAULT_BLOCKS = 10
MAX_BLOCK_ROWS = 2**31 - 1


class DriftMonitor:
    """Counts incoming rows per reference bin and tests the latest window against the profile.

    ``window`` is a number of rows or a :class:`~datetime.timedelta`. The window rolls in
    ``blocks`` steps: the monitor keeps at most ``blocks`` + 1 count matrices, so its memory does
    not depend on the window size or on how many rows it has seen (no raw rows are kept). A
    report covers the newest blocks: between ``(blocks-1)/blocks`` of the window and all of it
    once warm. Thread-safe.
    """

    def __init__(
        self,
        profile: DriftProfile,
        alpha: float = 0.05,
        window: int | timedelta = 1000,
        *,
        blocks: int = DEFAULT_BLOCKS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        self.profile = profile
        self.alpha = alpha
        self.window = window
        self._binner = Binner(profile)
        self._reference = self._binner.reference()
        self._clock = clock
        self._lock = threading.Lock()
        self._blocks = blocks
        if isinstance(window, timedelta):
            seconds = window.total_seconds()
            if seconds <= 0:
                raise ValueError(f"window must be positive, got {window}")
            self._block_rows = 0
            self._block_seconds = seconds / blocks
        else:
            if window < 1:
                raise ValueError(f"window must be >= 1 row, got {window}")
            self._block_rows = math.ceil(window / blocks)
            self._block_seconds = 0.0
        self._done: deque[tuple[float, WindowCounts]] = deque(maxlen=blocks)
        self._current = self._binner.empty()
        self._started = clock()

    def update(self, X: np.ndarray, outputs: np.ndarray | None = None) -> None:
        """Count a batch of rows (2-D, NaN = missing) and optionally the model's outputs."""
        rows = np.asarray(X, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        slots = self._binner.slots(rows)  # the costly part, once per batch and outside the lock
        with self._lock:
            if self._block_seconds:
                self._roll_by_time()
                if self._current.rows + rows.shape[0] > MAX_BLOCK_ROWS:
                    self._rotate()  # keeps int32 block counts from overflowing
                self._binner.add_slots(self._current, slots, outputs)
                return
            start = 0
            while start < rows.shape[0]:
                take = min(rows.shape[0] - start, self._block_rows - self._current.rows)
                part = None if outputs is None else outputs[start : start + take]
                self._binner.add_slots(self._current, slots[start : start + take], part)
                start += take
                if self._current.rows >= self._block_rows:
                    self._rotate()

    def merge(self, counts: WindowCounts) -> None:
        """Add counts from another monitor on the same profile (another worker or replica).

        They join the current block, which then closes if it is full.
        """
        with self._lock:
            if self._block_seconds:
                self._roll_by_time()
            if self._current.rows + counts.rows > MAX_BLOCK_ROWS:
                self._rotate()
            self._add(counts)
            if self._block_rows and self._current.rows >= self._block_rows:
                self._rotate()

    def snapshot(self) -> WindowCounts:
        """The counts of the current window (a copy)."""
        with self._lock:
            return self._window()

    def report(self) -> DriftReport:
        """Test the current window against the reference."""
        return evaluate(self.profile, self._reference, self.snapshot(), self.alpha)

    def reset(self) -> None:
        """Forget every counted row."""
        with self._lock:
            self._done.clear()
            self._current = self._binner.empty()
            self._started = self._clock()

    @property
    def nbytes(self) -> int:
        """Bytes held by the count matrices (the monitor's whole per-row state)."""
        per_block = self._current.matrix.nbytes
        return per_block * (self._blocks + 1) + self._reference.matrix.nbytes

    # -- windows ----------------------------------------------------------------------------
    def _add(self, counts: WindowCounts) -> None:
        self._current.matrix += counts.matrix
        self._current.rows += counts.rows

    def _rotate(self) -> None:
        self._done.append((self._started, self._current))
        self._current = self._binner.empty()
        self._started = self._clock()

    def _roll_by_time(self) -> None:
        now = self._clock()
        started = self._started
        if now - started >= self._block_seconds:
            self._rotate()
            self._started = now - (now - started) % self._block_seconds
        horizon = now - self._block_seconds * self._blocks
        while self._done and self._done[0][0] < horizon:
            self._done.popleft()

    def _window(self) -> WindowCounts:
        if self._block_seconds:
            self._roll_by_time()
            blocks = [c for _, c in self._done]
        else:
            keep = self._blocks - 1 if self._current.rows else self._blocks
            blocks = [c for _, c in list(self._done)[max(0, len(self._done) - keep) :]]
            blocks = blocks if keep else []
        matrix = self._current.matrix.astype(np.int64)
        for block in blocks:
            matrix += block.matrix
        return WindowCounts(matrix, self._current.rows + sum(b.rows for b in blocks))
