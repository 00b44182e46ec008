"""The tasks a job can run, as the desk's clients see them: names, descriptions and their options
(with what each allows). The registry itself lives with the workers; clients reach it only here."""

from __future__ import annotations

from workers.registry import ItemError, Option, TaskError, TaskSpec, load

__all__ = ["ItemError", "Option", "TaskError", "TaskSpec", "available"]


def available(plugins: tuple[str, ...] = ()) -> dict[str, TaskSpec]:
    """Every task a job may name: built in, installed as a plugin, or enabled in the config."""
    return load(plugins)
