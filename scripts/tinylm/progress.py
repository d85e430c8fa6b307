"""A one-line progress bar on stderr for the steps that take more than a few seconds (evaluation,
calibration): done/total, rate and ETA, redrawn at most every 0.25 s on a terminal, every 5 s in a log."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, unit: str = "") -> None:
        self.label, self.total, self.unit = label, max(1, total), unit
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < (0.25 if self.tty else 5.0) and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        bar = "#" * round(24 * min(1.0, done / self.total))
        eta_text = "--" if eta == float("inf") else f"{int(eta // 60)}m{int(eta % 60):02d}s"
        line = f"{self.label} [{bar:.<24}] {done}/{self.total} {self.unit} {rate:.1f}/s ETA {eta_text}"
        sys.stderr.write(f"\r{line}" if self.tty else f"{line}\n")
        sys.stderr.flush()

    def done(self) -> None:
        self.last = 0.0
        self.update(self.total)
        if self.tty:
            sys.stderr.write("\n")
