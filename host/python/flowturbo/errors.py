"""Exceptions: every failure of the library is raised as FlowturboError carrying the library's own message."""
from __future__ import annotations

from .types import Status


class FlowturboError(Exception):
    """A call into libflowturbo (or the flowturbo CLI) failed.

    ``status`` is the library's ``ft_status`` (None for a failure of the CLI, see ``returncode``), ``message`` the
    library's explanation (``ft_last_error``), e.g. ``"x.safetensors: missing tensor 'blocks.3.mlp.fc1.weight'"``.
    """

    def __init__(self, message: str, status: Status | None = None, returncode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.returncode = returncode

    def __str__(self) -> str:
        return f"{self.message} ({self.status.describe()})" if self.status is not None else self.message


class CancelledError(FlowturboError):
    """A progress callback asked to stop (returned True): the call ended early and cleanly (FT_ERR_CANCELLED)."""
