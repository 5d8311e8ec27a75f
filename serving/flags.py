"""Command-line flags made from the settings: one table for `python -m serving` and
`python -m serving.ray_app`, so a flag's name, type, choices, default and help are written once
(in serving/settings.py). Keys are never flags (`ps` would show them)."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path
from typing import Any

from serving.settings import Settings

# What a model replica is built with, wherever it runs (uvicorn workers or Ray Serve replicas).
MODEL_FLAGS = (
    "models_dir",
    "models",
    "backend",
    "device",
    "threads",
    "max_batch_size",
    "max_wait_ms",
    "batching",
    "log_level",
)


def add(parser: argparse.ArgumentParser, names: tuple[str, ...], defaults: Settings) -> None:
    """One flag per settings field: --max-batch-size for max_batch_size, --no-batching for a
    switch that is on by default; defaults shown from the environment (SERVING_*)."""
    for name in names:
        field = Settings.model_fields[name]
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        kind: Any = field.annotation
        options: dict[str, Any] = {
            "default": default,
            "help": (field.description or "").replace("%", "%%"),  # argparse formats help
        }
        if kind is bool:
            if default:
                flag = f"--no-{name.replace('_', '-')}"
                options.update(dest=name, action="store_false")
            else:
                options.update(action="store_true")
        elif typing.get_origin(kind) is typing.Literal:
            options.update(choices=typing.get_args(kind))
        elif typing.get_origin(kind) is list:
            options.update(nargs="+")
        elif isinstance(default, Path):
            options.update(default=str(default))
        else:
            options.update(type=type(default))
        parser.add_argument(flag, **options)
