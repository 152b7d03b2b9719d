"""Errors of the operations endpoints."""

from __future__ import annotations

from app.core.errors import AppError


class NotReady(AppError):
    status = 503
    code = "not_ready"
