"""`batchdesk search`: ranked chunks of an indexed collection (the ``index`` task builds them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from batchdesk.cli.context import echo_json, with_store

if TYPE_CHECKING:
    from batchdesk.search import SearchEngine


@click.command()
@click.argument("query", required=False, default="")
@click.option("--collection", "-c", default="default", show_default=True, help="Collection to search.")
@click.option("--limit", "-k", default=10, show_default=True, type=click.IntRange(1, 1000), help="Results at most.")
@click.option("--where", "-w", multiple=True, metavar="KEY=VALUE",
              help="Filter on metadata (repeatable, all apply): title, author, format, lang, pages, words = exact "
                   "value; path=GLOB; after=DATE / before=DATE (YYYY[-MM[-DD]]).")
@click.option("--no-hybrid", is_flag=True, help="Rank by the vectors alone (no keyword score).")
@click.option("--collections", "list_collections", is_flag=True, help="List the collections and their sizes.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects (path, page, score, text, ...).")
@click.pass_context
def search(ctx: click.Context, query: str, collection: str, limit: int, where: tuple[str, ...], no_hybrid: bool,
           list_collections: bool, as_json: bool) -> None:
    """Search an index built by `batchdesk run FOLDER --task index`: ranked chunks with their file, page,
    heading and a snippet."""
    from batchdesk.search import SearchEngine, parse_where  # numpy and the model: only for this command

    settings = with_store(ctx)
    engine = SearchEngine(settings.store_ref, settings.data_dir)
    if list_collections or not query.strip():
        _show_collections(engine, as_json)
        return
    hits = engine.search(query, collection, limit, parse_where(where), hybrid=not no_hybrid)
    if as_json:
        echo_json([hit.as_json() for hit in hits])
        return
    if not hits:
        click.echo(f"no results in collection {collection!r}")
        return
    for rank, hit in enumerate(hits, 1):
        where_in = f"p.{hit.page}" + (f"-{hit.page_end}" if hit.page_end and hit.page_end != hit.page else "") \
            if hit.page else ""
        heading = f"§ {hit.heading}" if hit.heading else ""
        click.echo(f"{rank:>3}. {hit.score:.3f}  {hit.path}  " + "  ".join(p for p in (where_in, heading) if p))
        click.echo(f"     {hit.snippet}")


def _show_collections(engine: SearchEngine, as_json: bool) -> None:
    rows = engine.collections()
    if as_json:
        echo_json([row._asdict() for row in rows])
        return
    if not rows:
        click.echo("no collections yet: index a folder with `batchdesk run FOLDER --task index`")
        return
    click.echo(f"{'COLLECTION':<20} {'DOCUMENTS':>9} {'CHUNKS':>9}  MODEL")
    for row in rows:
        click.echo(f"{row.name:<20} {row.documents:>9,} {row.chunks:>9,}  {row.model}")
