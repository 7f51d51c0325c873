"""Jinja templates and the static files, both shipped inside the package (no CDN, no build)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

HERE = Path(__file__).resolve().parent


def _plan_dict(plan: Any) -> Any:
    return msgspec.to_builtins(plan) if isinstance(plan, msgspec.Struct) else plan


def _configure(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["plan_dict"] = _plan_dict


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_configure)


def static_files() -> Router:
    return create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False)
