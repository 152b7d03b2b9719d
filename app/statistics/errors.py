"""Errors of the consumption-assistance statistics."""

from __future__ import annotations

from app.core.errors import Unprocessable


class InvalidStatsQuery(Unprocessable):
    code = "invalid_stats_query"


class InvalidDate(InvalidStatsQuery):
    code = "invalid_date"


class InvalidDateRange(InvalidStatsQuery):
    code = "invalid_date_range"


class DateRangeTooLong(InvalidStatsQuery):
    code = "date_range_too_long"


class InvalidGroupBy(InvalidStatsQuery):
    code = "invalid_group_by"


class InvalidExportFormat(InvalidStatsQuery):
    code = "invalid_export_format"


class InvalidYear(InvalidStatsQuery):
    code = "invalid_year"
