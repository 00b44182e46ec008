"""The help screen: every key binding, generated from the bindings themselves."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

Section = tuple[str, list[tuple[str, str]]]  # a title and its (keys, what they do) rows

INTRO = (
    "batchdesk pushes folders of files through tasks in batches on local worker processes. "
    "The store is the source of truth: quitting leaves unfinished work to resume at the next start."
)


def key_table(title: str, bindings: list[tuple[str, str]]) -> Table:
    """One section of the help: keys in the first column, what they do in the second."""
    table = Table(title=title, title_justify="left", title_style="bold", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for keys, description in bindings:
        table.add_row(keys, description)
    return table


KEY_NAMES = {"question_mark": "?", "plus": "+", "minus": "-", "slash": "/", "equals_sign": "="}


def describe(bindings: list[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do) for each binding that has a description, as the user types the keys."""
    rows = []
    for entry in bindings:
        binding = entry if isinstance(entry, Binding) else Binding(*entry)
        if not binding.description:
            continue
        keys = binding.key_display or ", ".join(KEY_NAMES.get(key, key) for key in binding.key.split(","))
        rows.append((keys, binding.tooltip or binding.description))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss_help", "Close")]

    def __init__(self, sections: list[Section]) -> None:
        super().__init__(classes="help")
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(Text(INTRO, style="italic"), id="help-intro")
            for title, rows in self.sections:
                yield Static(key_table(title, rows), classes="help-section")

    def on_mount(self) -> None:
        self.query_one("#help-body").border_title = "Help · keys (Esc to close)"

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
