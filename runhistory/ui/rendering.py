"""Rendering the UI's pages: one Jinja2 environment (autoescape on), the filters its templates
use, and the data handed to the page's scripts as escaped JSON (never an inline script)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from runhistory.core import errors
from runhistory.ui.session import cookie_token, sessions_of

TEMPLATES_DIR = Path(__file__).parent / "templates"
CHART_LIBRARY = Path(__file__).parent / "static" / "vendor" / "echarts.min.js"


def plain_json(value: Any) -> Any:
    """``value`` with every non-finite float as None, so that it is valid JSON for a browser."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    return value


def page_json(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>``, ``&`` and ``'`` escaped."""
    text = json.dumps(plain_json(value), separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")
    return Markup(text)


def format_time(value: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS`` local time, or empty."""
    return "" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def format_duration(seconds: float | None) -> str:
    """Seconds as ``1h 02m``, ``3m 04s`` or ``5.2s``, or empty."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_value(value: Any) -> str:
    """A metric, tag or property value as a table cell shows it."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters.update(page_json=page_json, time=format_time, duration=format_duration, value=format_value)
# Installed from npm with the package (scripts/ui_assets.py); a checkout installed by hand may lack it.
ENVIRONMENT.globals["chart_library_missing"] = lambda: not CHART_LIBRARY.is_file()


def render_html(name: str, context: dict[str, Any]) -> str:
    """A template rendered with ``context``."""
    return ENVIRONMENT.get_template(name).render(**context)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: the template with the session's CSRF token, whether sign-out applies, and ``context``."""
    sessions = sessions_of(request)
    token = cookie_token(request)
    base = {"csrf_token": sessions.csrf_token(token), "signed_in": bool(token) and sessions.required()}
    return HTMLResponse(render_html(name, {**base, "page_data": {}, **context}), status_code=status_code)


def render_error(request: Request, exc: errors.RunHistoryError) -> HTMLResponse:
    """An error as a page with the error's status and its sentence."""
    return render(request, "error.html", status_code=exc.http_status, message=str(exc), title="Error")
