"""The reports' HTML: one Jinja2 template machinery for the audit report and the model comparison.

Both documents extend ``templates/base.html.j2`` (layout, inline style, the report card's and the
tables' macros) and are fed a small context object built in Python
(:class:`dex_bias.report.context.AuditReport`, :class:`dex_bias.report.comparison.ComparisonReport`):
numbers are computed and formatted there, the prose is the templates'. Autoescaping is on, so a
group or file name can never inject markup.

Each document is one self-contained file: style inline, figures as base64 PNG data URIs, each
table's CSV as a base64 ``data:`` link, no script and no external request, so it can be mailed,
archived with an audit and opened offline.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from typing import Any

import jinja2
from PIL import Image

from dex_bias.report import formats


def image_data_uri(image: Image.Image) -> str:
    """PNG data URI of a PIL image, for an ``<img src=...>`` that needs no file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates' environment: package templates, autoescape on, undefined names an error.

    Filters: ``years``, ``signed``, ``percent``, ``points``, ``count``, ``level`` (an interval's
    confidence level: "95"), ``p`` (a p-value inside a sentence: "p = 0.040", "p < 0.0001"),
    ``interval`` (``value (low–high)`` in years) and ``words`` (a code as words); see
    :mod:`dex_bias.report.formats`.
    """
    from dex_bias.report.tables import words

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dex_bias.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    same_name = ("years", "signed", "percent", "points", "count", "level")  # filters that are a formats function
    env.filters.update(
        {name: getattr(formats, name) for name in same_name},
        p=formats.p_phrase,
        words=words,
        interval=lambda value, low, high: formats.interval(value, low, high),
    )
    return env


def render(template: str, report: Any) -> str:
    """Render ``template`` (a file of ``dex_bias/report/templates``) with ``report`` as its context."""
    return environment().get_template(template).render(report=report)
