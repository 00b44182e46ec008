"""The search screen: type a question, see the indexed documents' best chunks as you type; Enter opens
a result's document. Collections and their sizes show at the top; filters take ``--where``'s syntax.

Searches run in a thread worker (never on the UI thread), one at a time, the newest query winning; the
engine (batchdesk.search) is the app's, so the collection's matrix stays cached between searches and
between visits to this screen.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Select, Static

from batchdesk.errors import BatchdeskError
from batchdesk.search import Document, Hit, SearchEngine, parse_where
from batchdesk.store import opened

DEBOUNCE_SECONDS = 0.15  # typing pauses this long before a search starts
RESULTS = 30
SNIPPET_CELL = 110


class SearchScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", tooltip="Back to the jobs (from the results: back to the question)"),
        Binding("ctrl+r", "refresh_collections", "Collections", tooltip="Read the collections and their sizes again"),
        Binding("slash", "focus_query", "Question", key_display="/", tooltip="Type a new question"),
    ]
    DEFAULT_CSS = """
    SearchScreen #search-bar { height: 3; }
    SearchScreen #query { width: 3fr; }
    SearchScreen #where { width: 2fr; }
    SearchScreen #collection { width: 30; }
    SearchScreen #collections, SearchScreen #search-status { height: 1; padding: 0 1; color: $text-muted; }
    SearchScreen #results { height: 1fr; }
    """

    def __init__(self, store: Path | str, engine: SearchEngine) -> None:
        super().__init__(id="search")
        self.store = store
        self.engine = engine
        self.hits: list[Hit] = []
        self.searches = 0  # completed searches (tests wait on it)
        self.shown: tuple[str, str] | None = None  # (question, filters) of the results shown
        self._timer: Timer | None = None
        self._asked = 0  # the number of the newest search asked for: older answers are dropped

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("collections: reading…", id="collections")
        with Horizontal(id="search-bar"):
            yield Input(placeholder="Ask a question about your documents…", id="query")
            yield Input(placeholder="filters: lang=en after=2023 path=*.pdf", id="where")
            yield Select[str]([], prompt="collection", allow_blank=True, id="collection")
        yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield Static("", id="search-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "search"
        self.query_one(DataTable).add_columns("#", "score", "document", "page", "heading · text")
        self.query_one("#query", Input).focus()
        self.action_refresh_collections()

    # -- collections -----------------------------------------------------------------------------
    def action_refresh_collections(self) -> None:
        self._collections()

    @work(thread=True, exclusive=True, group="collections", exit_on_error=False)
    def _collections(self) -> None:
        try:
            with opened(self.store):
                rows = self.engine.collections()
        except Exception as exc:  # a background failure is told, never a crash
            self.app.call_from_thread(self._status, f"cannot read the collections: {type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._show_collections, [(r.name, r.documents, r.chunks) for r in rows])

    def _show_collections(self, rows: list[tuple[str, int, int]]) -> None:
        line = " · ".join(f"{name}: {docs:,} documents, {chunks:,} chunks" for name, docs, chunks in rows)
        self.query_one("#collections", Static).update(
            "collections: " + (line or "none yet — index a folder with the index task (n: new job)"))
        select = self.query_one("#collection", Select)
        current = select.value if isinstance(select.value, str) else None
        select.set_options([(name, name) for name, _, _ in rows])
        names = [name for name, _, _ in rows]
        if names:
            select.value = current if current in names else ("default" if "default" in names else names[0])

    # -- searching -------------------------------------------------------------------------------
    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_SECONDS, self._ask)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._ask()
        if self.hits:
            self.query_one(DataTable).focus()

    def _ask(self) -> None:
        query = self.query_one("#query", Input).value
        where = self.query_one("#where", Input).value
        select = self.query_one("#collection", Select)
        collection = select.value if isinstance(select.value, str) else "default"
        self._asked += 1
        self._search(self._asked, query, where, collection)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def _search(self, number: int, query: str, where: str, collection: str) -> None:
        started = time.perf_counter()
        try:
            filters = parse_where(shlex.split(where))
            with opened(self.store):
                hits = self.engine.search(query, collection, RESULTS, filters) if query.strip() else []
        except (BatchdeskError, ValueError) as exc:  # a filter to fix, no such collection
            self.app.call_from_thread(self._answered, number, (query, where), None, str(exc))
            return
        except Exception as exc:  # a background failure is told, never a crash
            failure = f"search failed: {type(exc).__name__}: {exc}"
            self.app.call_from_thread(self._answered, number, (query, where), None, failure)
            return
        took = (time.perf_counter() - started) * 1000
        self.app.call_from_thread(self._answered, number, (query, where), hits,
                                  f"{len(hits)} result(s) in {took:.0f} ms")

    def _answered(self, number: int, asked: tuple[str, str], hits: list[Hit] | None, status: str) -> None:
        if number != self._asked or not self.is_attached:
            return  # a newer question is on its way
        self.shown = asked
        if hits is not None:
            self.hits = hits
            table = self.query_one(DataTable)
            table.clear()
            for rank, hit in enumerate(hits, 1):
                page = str(hit.page) if hit.page else ""
                text = Text(f"{hit.heading} · " if hit.heading else "", style="bold")
                text.append(hit.snippet[:SNIPPET_CELL])
                table.add_row(str(rank), f"{hit.score:.3f}", hit.title or Path(hit.path).name, page, text)
        self._status(status)
        self.searches += 1

    def _status(self, text: str) -> None:
        self.query_one("#search-status", Static).update(text)

    # -- results ---------------------------------------------------------------------------------
    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        if 0 <= event.cursor_row < len(self.hits):
            hit = self.hits[event.cursor_row]
            self.app.push_screen(DocumentScreen(self.store, self.engine, hit))

    def action_focus_query(self) -> None:
        self.query_one("#query", Input).focus()

    def action_back(self) -> None:
        if self.query_one(DataTable).has_focus:
            self.action_focus_query()
            return
        self.app.pop_screen()


class DocumentScreen(ModalScreen[None]):
    """One document of a result: where it is, its metadata and its first chunks (the hit's chunk first)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]
    DEFAULT_CSS = """
    DocumentScreen { align: center middle; }
    DocumentScreen #document { width: 90%; height: 85%; border: thick $accent; background: $surface; padding: 1 2; }
    DocumentScreen .chunk { margin-bottom: 1; }
    """

    def __init__(self, store: Path | str, engine: SearchEngine, hit: Hit) -> None:
        super().__init__(classes="document")
        self.store, self.engine, self.hit = store, engine, hit
        self.loaded = False  # tests wait on it

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="document"):
            yield Static(self._meta_text({"path": self.hit.path, "title": self.hit.title}), id="document-meta")
            yield Static(Text(self.hit.text), classes="chunk", id="hit-chunk")
            yield Static("reading the document…", id="document-chunks")

    def on_mount(self) -> None:
        where = f" (page {self.hit.page})" if self.hit.page else ""
        self.query_one("#document").border_title = f"{self.hit.title or Path(self.hit.path).name}{where} · Esc to close"
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        try:
            with opened(self.store):
                document = self.engine.document(self.hit.document_id)
        except Exception as exc:  # a background failure is told, never a crash
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._show, document)

    def _show(self, document: Document) -> None:
        self.query_one("#document-meta", Static).update(self._meta_text(document.meta))
        body = Text()
        for seq, page, heading, text in document.chunks:
            label = " · ".join(part for part in (f"chunk {seq + 1}", f"page {page}" if page else "", heading or "")
                               if part)
            body.append(label + "\n", style="bold" if seq == self.hit.chunk else "dim")
            body.append(text + "\n\n")
        self.query_one("#document-chunks", Static).update(body)
        self.loaded = True

    def _failed(self, error: str) -> None:
        self.query_one("#document-chunks", Static).update(f"cannot read the document: {error}")
        self.loaded = True

    @staticmethod
    def _meta_text(meta: dict) -> Text:
        text = Text()
        for key in ("path", "title", "author", "created", "modified", "format", "pages", "words", "lang", "chunks"):
            if meta.get(key) not in (None, ""):
                text.append(f"{key:>9}: ", style="bold cyan")
                text.append(f"{meta[key]}\n")
        return text

    def action_close(self) -> None:
        self.dismiss(None)
