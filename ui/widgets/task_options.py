"""The option fields of one task, shared by the new-job and new-watch dialogs.

One row per declared option: a checkbox for a boolean, a select for choices, an input otherwise,
whose placeholder gives the default and what the option allows (``1000 · integer >= 50``), the
same text `batchdesk tasks` prints. The dialogs validate the values through the task's own
``parse_options`` when they submit, so the fields never disagree with the CLI.
"""

from __future__ import annotations

from typing import Any

from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Input, Label, Select

from batchdesk.tasks import Option, TaskSpec


def placeholder(option: Option) -> str:
    """``default · allowed`` for an input field (either part alone when the other is empty)."""
    default = "" if option.default in (None, "") else str(option.default)
    return " · ".join(part for part in (default, option.describe()) if part)


class TaskOptions(VerticalScroll):
    """The fields of one task's options; :meth:`show` switches task, :meth:`values` reads them."""

    DEFAULT_CSS = """
    TaskOptions {
        height: auto;
        max-height: 12;
    }
    TaskOptions > .option {
        height: auto;
    }
    TaskOptions .option-label {
        width: 14;
        padding: 1 1 0 0;
        text-style: bold;
    }
    TaskOptions .option Input, TaskOptions .option Select, TaskOptions .option Checkbox {
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        # Not a stop of its own for Tab: the fields are (and scroll into view when they get the focus).
        super().__init__(id=id, can_focus=False)
        self.spec: TaskSpec | None = None
        self.compact = False  # the fields' style (borderless, one line each) for the fields shown next

    async def show(self, spec: TaskSpec | None) -> None:
        """Replace the fields with ``spec``'s options (awaited: two tasks may share an option name)."""
        self.spec = spec
        await self.remove_children()
        rows = [self._row(option, self.compact) for option in (spec.options if spec else ())]
        if rows:
            await self.mount_all(rows)
        self.display = bool(rows)

    @staticmethod
    def _row(option: Option, compact: bool) -> Horizontal:
        label = Label(option.name + (" *" if option.required else ""), classes="option-label")
        label.tooltip = f"{option.help}\nallowed: {option.describe()}" if option.help else option.describe()
        widget_id = f"opt-{option.name}"
        if option.type is bool:
            field: Any = Checkbox(option.help or option.name, value=bool(option.default), id=widget_id,
                                  compact=compact)
        elif option.choices:
            value = option.default if option.default in option.choices else option.choices[0]
            field = Select([(str(c), c) for c in option.choices], allow_blank=False, value=value, id=widget_id,
                           compact=compact)
        else:
            field = Input(placeholder=placeholder(option), id=widget_id, tooltip=label.tooltip, compact=compact)
        return Horizontal(label, field, classes="option")

    def values(self) -> dict[str, Any]:
        """The options the user set (untouched fields are left out so the task's defaults apply)."""
        values: dict[str, Any] = {}
        for option in self.spec.options if self.spec else ():
            widget = self.query_one(f"#opt-{option.name}")
            if isinstance(widget, Checkbox):
                if widget.value != bool(option.default):
                    values[option.name] = widget.value
            elif isinstance(widget, Select):
                if widget.value is not Select.NULL and widget.value != option.default:
                    values[option.name] = widget.value
            elif isinstance(widget, Input) and widget.value.strip():
                values[option.name] = widget.value.strip()
        return values
