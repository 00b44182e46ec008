"""One settings object: command-line options over BATCHDESK_* environment over the config file over defaults.

The config file is TOML (``$BATCHDESK_CONFIG`` or the per-user config path from
:mod:`batchdesk.locations`); every key below may appear at its top level, e.g.::

    data_dir = "~/batchdesk-data"
    store = "postgresql://batchdesk:secret@10.0.0.5:5432/batchdesk"   # default: <data_dir>/batchdesk.sqlite3
    broker = "embedded"          # auto | embedded | managed
    redis_url = "redis://:secret@10.0.0.5:6379/0"
    workers = 4
    plugins = ["mypkg.tasks:ocr"]
    retention_days = 30
    worker_nice = 10             # workers' niceness: below the user's programs (0: same as the desk)
    notify = true                # a desktop notification when a job ends (notify-send, osascript); default false
    on_done = ["/usr/local/bin/after-job", "--quiet"]   # run when a job ends (see batchdesk/notify.py); no shell
    on_done_timeout = 60         # seconds the on_done command may take before it is killed
    [routes]                     # task -> queue
    command = "low"
    [task_policies.command]      # retries and time limits for one task (a job may override them)
    retries = 1
    item_timeout = 120
    [rate_limits]                # items per second/minute/hour, shared by all workers
    command = "10/m"             # a task's name, or "queue:NAME"
    [[watches]]                  # drop folders (see docs/watch.md)
    path = "~/Inbox/statements"
    task = "statements"
    on_done = "move"
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from batchdesk import defaults, locations
from batchdesk.errors import BatchdeskError
from batchdesk.watch.spec import WatchSpec, parse_watch_entries
from data.store import is_store_url
from workers.registry import BOOL_ALLOWED, FALSE_WORDS, TRUE_WORDS
from workers.throttle import RateLimit, RateLimitError

ENV_PREFIX = "BATCHDESK_"


class ConfigError(BatchdeskError):
    """A bad setting; the message names the setting and where it came from."""


@dataclass(frozen=True)
class Settings:
    """Every setting of a batchdesk process, resolved once (see the module docstring for the order)."""

    data_dir: Path = field(default_factory=locations.default_data_dir)
    broker: str = defaults.BROKER_MODE
    redis_url: str | None = None
    workers: int | None = None  # None: the planner decides
    store: Path | str | None = None  # store file or postgresql:// URL; default <data_dir>/batchdesk.sqlite3
    plugins: tuple[str, ...] = ()
    routes: Mapping[str, str] = field(default_factory=dict)
    retries: int = defaults.BATCH_RETRIES
    retry_backoff: tuple[float, ...] = defaults.RETRY_BACKOFF
    batch_timeout: int = defaults.BATCH_HARD_TIMEOUT
    item_timeout: float = defaults.ITEM_SOFT_TIMEOUT
    stale_seconds: float = defaults.BATCH_STALE_SECONDS
    retention_days: int = defaults.RETENTION_DAYS
    settle_seconds: float = defaults.SETTLE_SECONDS
    # [[watches]] of the config file; None when no config file was read (the store's watches are left alone)
    watches: tuple[WatchSpec, ...] | None = None
    rate_limits: Mapping[str, str] = field(default_factory=dict)
    # per task: {"retries", "retry_backoff", "batch_timeout", "item_timeout"} overriding the globals above
    task_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    breaker_threshold: float = defaults.BREAKER_FAILURE_RATE
    breaker_min_items: int = defaults.BREAKER_MIN_ITEMS
    worker_nice: int = defaults.WORKER_NICE  # 0-19; 0 keeps workers at the desk's priority
    # a background desk (started by `run`, `resume`, `submit`) stops this long after its last job
    linger_seconds: float = defaults.LINGER_SECONDS
    notify: bool = False  # a desktop notification when a job ends, where the platform has one
    on_done: tuple[str, ...] = ()  # a command (argv, no shell) the desk runs when a job ends (batchdesk.notify)
    on_done_timeout: float = defaults.ON_DONE_TIMEOUT_SECONDS
    config_path: Path | None = None  # the config file these settings were read from (not a config key)

    @property
    def store_ref(self) -> Path | str:
        """What to pass to ``open_store``: the SQLite file (a Path) or the PostgreSQL URL (a str)."""
        return self.store or locations.store_path(self.data_dir)

    @property
    def store_path(self) -> Path | str:
        """The same as :attr:`store_ref` (the older name; a str when the store is a URL)."""
        return self.store_ref


_NOT_CONFIG_KEYS = {"config_path"}
_ENV_KEYS = {f.name: ENV_PREFIX + f.name.upper() for f in fields(Settings) if f.name not in _NOT_CONFIG_KEYS}
_ENV_KEYS["linger_seconds"] = ENV_PREFIX + "LINGER"


def load_settings(overrides: Mapping[str, Any] | None = None, config_file: Path | None = None) -> Settings:
    """Build the settings: ``overrides`` (CLI options; None values ignored) > env > file > defaults."""
    values: dict[str, Any] = {}
    path = config_file or _config_path()
    if path.is_file():
        values["watches"] = ()  # a config file without [[watches]] owns no watch
        values.update(_read_file(path))
    for name, env_key in _ENV_KEYS.items():
        if env_key in os.environ and os.environ[env_key] != "":
            values[name] = os.environ[env_key]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values["config_path"] = path
    return _coerce(values, source=str(path))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment for a batchdesk process that must see the same settings as this one (a
    background desk started as a new process): the command-line choices as BATCHDESK_* variables."""
    env = dict(os.environ)
    chosen = {"data_dir": settings.data_dir, "broker": settings.broker, "redis_url": settings.redis_url,
              "store": settings.store, "workers": settings.workers, "linger_seconds": settings.linger_seconds}
    env.update({_ENV_KEYS[name]: str(value) for name, value in chosen.items() if value is not None})
    if settings.config_path is not None:
        env[ENV_PREFIX + "CONFIG"] = str(settings.config_path)
    return env


def _config_path() -> Path:
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    return Path(env).expanduser() if env else locations.default_config_file()


def _read_file(path: Path) -> dict[str, Any]:
    import tomllib  # here: most commands run without a config file

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    known = {f.name for f in fields(Settings)} - _NOT_CONFIG_KEYS
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return data


def _flag(raw: Any) -> bool:
    """true/false, yes/no, on/off, 1/0 (or a TOML boolean); anything else is a mistake."""
    word = str(raw).strip().lower()
    if isinstance(raw, bool) or word in TRUE_WORDS | FALSE_WORDS:
        return raw if isinstance(raw, bool) else word in TRUE_WORDS
    raise ValueError(f"use one of {BOOL_ALLOWED}")


def _coerce(values: dict[str, Any], source: str) -> Settings:
    out: dict[str, Any] = {}
    try:
        for name, raw in values.items():
            if name == "store" and is_store_url(str(raw)):
                out[name] = str(raw)
            elif name in ("data_dir", "store"):
                out[name] = Path(str(raw)).expanduser().resolve()
            elif name in ("workers", "retries", "batch_timeout", "retention_days", "breaker_min_items", "worker_nice"):
                out[name] = int(raw)
            elif name in ("item_timeout", "stale_seconds", "settle_seconds", "breaker_threshold", "linger_seconds",
                          "on_done_timeout"):
                out[name] = float(raw)
            elif name == "notify":
                out[name] = _flag(raw)
            elif name == "on_done":  # words split as a shell would, but no shell runs it
                out[name] = tuple(shlex.split(raw) if isinstance(raw, str) else (str(word) for word in raw))
            elif name == "config_path":
                out[name] = Path(raw)
            elif name == "plugins":
                out[name] = tuple(raw.split(",") if isinstance(raw, str) else raw)
            elif name == "retry_backoff":
                out[name] = tuple(float(x) for x in (raw.split(",") if isinstance(raw, str) else raw))
            elif name == "task_policies":
                out[name] = {task: dict(policy) for task, policy in dict(raw).items()}
            elif name == "watches":
                out[name] = parse_watch_entries(raw, source)
            elif name in ("routes", "rate_limits"):
                out[name] = dict(raw) if not isinstance(raw, str) else dict(
                    pair.split("=", 1) for pair in raw.split(",") if pair
                )
            else:
                out[name] = raw
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value for {name!r} ({raw!r}, from {source} or the environment): {exc}") from exc
    settings = Settings(**out)
    if settings.broker not in defaults.BROKER_MODES:
        raise ConfigError(f"broker must be one of {', '.join(defaults.BROKER_MODES)}, not {settings.broker!r}")
    if settings.workers is not None and not 0 <= settings.workers <= defaults.MAX_WORKERS:
        raise ConfigError(f"workers must be between 0 and {defaults.MAX_WORKERS}, not {settings.workers}")
    if settings.on_done_timeout <= 0:
        raise ConfigError(f"on_done_timeout must be more than 0, not {settings.on_done_timeout:g}")
    if settings.linger_seconds < 0:
        raise ConfigError(f"linger_seconds must be 0 or more, not {settings.linger_seconds:g}")
    if not 0 <= settings.worker_nice <= 19:
        raise ConfigError(f"worker_nice must be between 0 and 19, not {settings.worker_nice}")
    bad_routes = {q for q in settings.routes.values() if q not in defaults.QUEUES}
    if bad_routes:
        raise ConfigError(f"routes name unknown queue(s) {', '.join(sorted(bad_routes))}; "
                          f"use {', '.join(defaults.QUEUES)}")
    for scope, text in settings.rate_limits.items():
        try:
            RateLimit.parse(scope, text)
        except RateLimitError as exc:
            raise ConfigError(str(exc)) from exc
    return settings
