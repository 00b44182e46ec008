"""Categorising: rules files (TOML) layered over each other, first matching pattern wins.

A rules file::

    default = "Uncategorised"        # category when no pattern matches
    default_income = "Other income"  # optional: category for unmatched money coming in
    inherit = false                  # optional: do not layer this file over the ones below it
    [categories]                     # first matching category wins, top to bottom
    Groceries = ["tesco", "aldi", "re:\\bwhole ?foods\\b"]

A pattern is a case-insensitive substring of the description, or with ``re:`` (or wrapped in
``/.../``) a case-insensitive regular expression. Each pattern is tried on the description as
printed and on its normalised form (``SQ *BLUE BOTTLE`` -> ``blue bottle``, ``UBER *EATS`` ->
``uber eats``), so rules need not spell out every way a payment processor decorates a name.

Layers, top first (the first match in the top layer wins; ``default``/``default_income`` come
from the topmost layer that sets them):

1. the ``rules`` option's file (``--opt rules=FILE``), if given;
2. the user's rules file: ``$BATCHDESK_RULES`` if set (empty: none), else ``rules.toml`` in the
   folder of ``$BATCHDESK_CONFIG`` if that is set, else ``rules.toml`` in the per-user config
   folder (``~/.config/batchdesk/rules.toml`` on Linux) - used when it exists;
3. the bundled ``data/rules/default_rules.toml``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

import platformdirs

from workers.tasks.statements.model import StatementError

Pattern = str | re.Pattern[str]  # a lower-cased substring, or a compiled regex
USER_RULES_ENV = "BATCHDESK_RULES"


@dataclass(frozen=True)
class RuleLayer:
    """One rules file as parsed."""

    path: str
    default: str | None
    default_income: str | None
    inherit: bool
    categories: tuple[tuple[str, tuple[Pattern, ...]], ...]


@dataclass(frozen=True)
class Rules:
    """Layers combined: the categories to try in order and the defaults."""

    path: str  # the topmost layer's file
    layers: tuple[str, ...]  # what each layer is, top first: option, user, bundled
    default: str
    default_income: str | None
    categories: tuple[tuple[str, tuple[Pattern, ...]], ...]

    def categorise(self, description: str, amount: Decimal) -> str:
        texts = {description, normalise(description)}
        lowered = {t.lower() for t in texts}
        for category, patterns in self.categories:
            for pattern in patterns:
                if isinstance(pattern, str):
                    if any(pattern in low for low in lowered):
                        return category
                elif any(pattern.search(t) for t in texts):
                    return category
        if amount > 0 and self.default_income:
            return self.default_income
        return self.default


# Payment processors and card schemes print their own prefix before the merchant's name.
_PROCESSOR = re.compile(
    r"^(?:sq|tst|pp|paypal|sp|sumup|iz|izettle|zettle|lsp|dd|pos|vis|visa|card)\s*[*_]\s*", re.IGNORECASE
)
_NOISE = re.compile(r"[*_#]+|\s{2,}")


def normalise(description: str) -> str:
    """'SQ *BLUE BOTTLE' -> 'blue bottle'; 'UBER   *EATS' -> 'uber eats' (lower case, one space)."""
    text = _PROCESSOR.sub("", description.strip())
    return " ".join(_NOISE.sub(" ", text).split()).lower()


def default_rules_path() -> Path:
    """The bundled rules file, found through the ``data`` package (works installed and frozen)."""
    return Path(str(resources.files("data").joinpath("rules", "default_rules.toml")))


def user_rules_path() -> Path | None:
    """The user's rules file, whether or not it exists (None: switched off with an empty
    ``$BATCHDESK_RULES``). Computed as batchdesk/locations.py finds the config folder."""
    env = os.environ.get(USER_RULES_ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    config = os.environ.get("BATCHDESK_CONFIG")
    if config:
        return Path(config).expanduser().parent / "rules.toml"
    return Path(platformdirs.user_config_dir("batchdesk")) / "rules.toml"


def resolve_rules_path(option: str | None, source_root: Path | None = None) -> Path | None:
    """``rules`` option -> file (None when empty); a relative path is tried against the current
    folder, then the job's source folder."""
    if not option:
        return None
    candidate = Path(option).expanduser()
    if candidate.is_absolute():
        tried = [candidate]
    else:
        tried = [Path.cwd() / candidate] + ([Path(source_root) / candidate] if source_root else [])
    for path in tried:
        if path.is_file():
            return path
    raise StatementError(f"rules file not found: {option}")


def rules_for(option: str | None, source_root: Path | None = None) -> Rules:
    """The layered rules a job uses: option file over the user's file over the bundled one."""
    stack: list[tuple[str, RuleLayer]] = []
    option_path = resolve_rules_path(option, source_root)
    if option_path is not None:
        stack.append(("option", load_layer(option_path)))
    user = user_rules_path()
    if user is not None and user.is_file() and (not stack or stack[-1][1].inherit):
        stack.append(("user", load_layer(user)))
    if not stack or stack[-1][1].inherit:
        stack.append(("bundled", load_layer(default_rules_path())))
    return combine(stack)


def load_rules(path: Path) -> Rules:
    """One rules file on its own (no layers)."""
    return combine([("file", load_layer(path))])


def combine(stack: list[tuple[str, RuleLayer]]) -> Rules:
    """Layers, top first, as one set of rules."""
    default = next((layer.default for _, layer in stack if layer.default is not None), "Uncategorised")
    income = next((layer.default_income for _, layer in stack if layer.default_income is not None), None)
    categories = tuple(cat for _, layer in stack for cat in layer.categories)
    return Rules(stack[0][1].path, tuple(label for label, _ in stack), default, income, categories)


_CACHE: dict[tuple[str, int, int], RuleLayer] = {}


def load_layer(path: Path) -> RuleLayer:
    """Parse and validate a rules file (cached by path, size and mtime)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise StatementError(f"cannot read rules file {path}: {exc.strerror}") from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = _parse_layer(path)
    return _CACHE[key]


def _parse_layer(path: Path) -> RuleLayer:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StatementError(f"cannot read rules file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StatementError(f"rules file {path} is not valid TOML: {exc}") from None
    default, income, inherit = doc.get("default"), doc.get("default_income"), doc.get("inherit", True)
    cats = doc.get("categories", {})
    if any(v is not None and not isinstance(v, str) for v in (default, income)):
        raise StatementError(f"rules file {path}: 'default' and 'default_income' must be strings")
    if not isinstance(inherit, bool):
        raise StatementError(f"rules file {path}: 'inherit' must be true or false")
    if not isinstance(cats, dict):
        raise StatementError(f"rules file {path}: [categories] must be a table of category = [patterns]")
    categories = tuple((str(name), _patterns(path, str(name), patterns)) for name, patterns in cats.items())
    return RuleLayer(str(path), default, income, inherit, categories)


def _patterns(path: Path, name: str, patterns: object) -> tuple[Pattern, ...]:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise StatementError(f"rules file {path}: category {name!r} must be a list of strings")
    compiled: list[Pattern] = []
    for pattern in patterns:
        regex = None
        if pattern.startswith("re:"):
            regex = pattern[3:]
        elif len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
            regex = pattern[1:-1]
        if regex is None:
            if pattern.strip():
                compiled.append(pattern.lower())
            continue
        try:
            compiled.append(re.compile(regex, re.IGNORECASE))
        except re.error as exc:
            raise StatementError(f"rules file {path}: category {name!r}: bad regex {regex!r}: {exc}") from None
    return tuple(compiled)
