"""The TUI's search screen (f from the main screen): results as the user types, from a thread worker;
filters; a result's document; the collections and their sizes. Real documents indexed with the real
model into the real store."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input

from batchdesk.desk.session import Session
from conftest_tasks import run_job
from data.store import close_store, open_store
from index_corpus import DOCUMENTS, WRITERS
from test_ui_support import FIXED_NOW, SIZE, screen_text, until
from ui.app import create_app
from ui.screens.search import DocumentScreen, SearchScreen


@pytest.fixture
def indexed_app(settings, tmp_path):
    """An app over a store whose default collection holds ten of the labelled documents."""
    root = tmp_path / "docs"
    for rel, title, author, created, sections in DOCUMENTS[:10]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        WRITERS[path.suffix](path, title, author, created, sections)
    open_store(settings.store_ref)
    run_job("index", root, tmp_path / "out")
    close_store()
    session = Session(settings)
    app = create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW, poll_interval=0.5)
    yield app, root.resolve()
    session.close()
    close_store()


async def _search(app, pilot, text: str, where: str = "") -> SearchScreen:
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    screen.query_one("#where", Input).value = where
    screen.query_one("#query", Input).value = text
    await until(pilot, lambda: screen.shown == (text, where), message=f"the answer to {text!r}")
    return screen


async def test_typing_a_question_shows_the_document_it_is_about(indexed_app):
    app, root = indexed_app
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen), message="the search screen")
        screen = app.screen
        await until(pilot, lambda: "10 documents" in screen_text(app), message="the collections and their sizes")
        await pilot.press(*"honey bees leaving the hive")
        await until(pilot, lambda: screen.hits and screen.hits[0].path == str(root / "farm/beekeeping-spring.pdf"),
                    message="the beekeeping guide on top")
        assert "Beekeeping in spring" in screen_text(app)
        screen = await _search(app, pilot, "a renter moving out of the flat")
        assert screen.hits[0].path.endswith("home/tenancy-agreement.docx")
        await pilot.press("enter")  # from the question to the results
        assert screen.query_one(DataTable).has_focus
        await pilot.press("enter")  # open the first result's document
        await until(pilot, lambda: isinstance(app.screen, DocumentScreen) and app.screen.loaded,
                    message="the document's details")
        text = screen_text(app)
        assert "Lakeside Lettings" in text and "three months before" in text
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen), message="back to the results")
        await pilot.press("escape", "escape")
        await until(pilot, lambda: app.screen is app.main, message="back to the jobs")


async def test_filters_narrow_the_results_and_mistakes_are_shown(indexed_app):
    app, _ = indexed_app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, SearchScreen), message="the search screen")
        screen = await _search(app, pilot, "spots on the leaves of plants", "format=docx")
        assert screen.hits and {hit.format for hit in screen.hits} == {"docx"}
        await _search(app, pilot, "spots on the leaves of plants", "colour=blue")
        assert "--where takes key=value" in screen_text(app)
