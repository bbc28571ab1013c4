"""The start/stop contract every lab shares: a lab that fails to start still stops what it started."""

from __future__ import annotations

from typing import Self


class StartStop:
    """Mixin: ``with Lab() as lab:`` starts, and stops on any exit, including a failed start."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
