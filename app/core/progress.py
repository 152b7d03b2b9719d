"""A one-line progress bar on a terminal stream, for long commands (`shanhai stats rebuild`, the
benchmark data generators)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """`bar(done, total)` redraws `label [#####.....] done/total rate/s`; a newline at the end."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label, self.width = label, width
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        filled = int(self.width * done / max(total, 1))
        rate = done / max(time.monotonic() - self.started, 1e-9)
        self.stream.write(
            f"\r{self.label:<10} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{done:>9,}/{total:,} {rate:,.0f}/s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
