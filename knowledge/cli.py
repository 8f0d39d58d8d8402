"""`tutor kb ...`: ingest, list, show and count knowledge-base items."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from click_didyoumean import DYMGroup

from knowledge.errors import KnowledgeError
from knowledge.loader import ALL_FORMATS, SOURCES_DIR, collect_paths, load_document


def _store(ctx: click.Context):
    from tutor.services import open_store
    from tutor.settings import load_settings

    settings = load_settings()
    return open_store(settings.data_dir)


@click.group(cls=DYMGroup)
def kb() -> None:
    """Knowledge base: the questionnaire items the tutor answers and quizzes from."""


@kb.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(ALL_FORMATS), help="Parse every file with this format.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless something goes wrong.")
@click.option(
    "--replace",
    is_flag=True,
    help="Let a file replace a stored document of the same name that came from elsewhere (the bundled "
    "sources, a server's cards, another file); without it that is an error naming both.",
)
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], fmt: str | None, quiet: bool, replace: bool) -> None:
    """Parse documents (default: the bundled sources) into the store, then index them.

    Every file is parsed and checked before anything is written; each document is then published whole.
    A document is its origin plus its file name: a file named like a document from elsewhere is refused
    unless --replace is given. At most 100,000 entries per file.
    """
    from tutor.services import embed, refresh_index

    try:
        files = collect_paths(paths or (SOURCES_DIR,))
        documents = []
        for path in files:
            documents.append(load_document(path, fmt))
            if not quiet:
                click.echo(f"parsed {path.name}: {len(documents[-1].entries)} entries", err=True)
        store = _store(ctx)
        report = store.ingest(
            documents, embed, progress=None if quiet else lambda m: click.echo(m, err=True), replace=replace
        )
    except KnowledgeError as exc:
        if exc.published:
            done = ", ".join(exc.published)
            raise click.ClickException(f"{exc} ({done}: published before it, whole)") from None
        raise click.ClickException(f"{exc} (nothing was changed)") from None
    if not quiet:  # -q: nothing on success (errors still go to stderr)
        click.echo(
            f"ingested {report.documents} documents: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.retired} retired"
        )
    try:  # the first question after an ingest should not wait for the index
        rebuilt = refresh_index(store)
    except Exception as exc:  # the store is ingested either way; the next question rebuilds the index
        raise click.ClickException(f"ingested, but the index could not be built: {exc}") from None
    if rebuilt and not quiet:
        click.echo(f"index rebuilt ({rebuilt})", err=True)


@kb.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--source", help="Only this document.")
@click.option("--all", "include_retired", is_flag=True, help="Include retired items.")
@click.pass_context
def list_items(ctx: click.Context, as_json: bool, source: str | None, include_retired: bool) -> None:
    """List items (id, source, n, question, answer, flags, group)."""
    try:
        items = _store(ctx).items(include_retired=include_retired, source=source)
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None
    out = sys.stdout
    for item in items:
        if as_json:
            record = {
                "id": item.id, "source": item.source, "n": item.n, "question": item.question,
                "answer": item.answer, "flags": sorted(item.flags), "group": item.group,
            }  # fmt: skip
            if include_retired:
                record["retired"] = item.retired
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            flags = f" [{', '.join(sorted(item.flags))}]" if item.flags else ""
            out.write(f"{item.id:>5}  {item.source}#{item.n:<4} {item.question[:90]}{flags}\n")


@kb.command()
@click.argument("item_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, item_id: int, as_json: bool) -> None:
    """Show one item with its duplicate group."""
    try:
        store = _store(ctx)
        item = store.item(item_id)
        members = store.group_members(item.group) if item.group is not None else [item]
        best = store.best_answers().get(item.group)
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({
            "id": item.id, "source": item.source, "n": item.n, "question": item.question, "answer": item.answer,
            "flags": sorted(item.flags), "relevance": item.relevance, "group": item.group, "best_in_group": best,
            "group_members": [{"id": m.id, "source": m.source, "n": m.n} for m in members],
            "retired": item.retired,
        }, ensure_ascii=False))  # fmt: skip
        return
    click.echo(f"#{item.id}  {item.source} entry {item.n}" + ("  (retired)" if item.retired else ""))
    click.echo(f"Q: {item.question}")
    click.echo(f"A: {item.answer or '(no answer in the source)'}")
    relevance = "-" if item.relevance is None else f"{item.relevance:.3f}"
    click.echo(f"flags: {', '.join(sorted(item.flags)) or '-'}   relevance: {relevance}")
    if len(members) > 1:
        click.echo(f"group {item.group} (best answer: #{best}):")
        for m in members:
            click.echo(
                f"  #{m.id} {m.source} entry {m.n}" + (f" [{', '.join(sorted(m.flags))}]" if m.flags else "")
            )


@kb.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts per source and per flag."""
    try:
        store = _store(ctx)
        numbers = store.stats()
        titles = {d.source: d.title for d in store.documents()}
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(numbers))
        return
    if not numbers["items"]:
        click.echo("The knowledge base is empty: run `tutor kb ingest` first.")
        return
    click.echo(
        f"{numbers['items']} items, {numbers['duplicate_groups']} duplicate groups, {numbers['retired']} retired"
    )
    click.echo("per source:")
    for source, count in numbers["per_source"].items():
        click.echo(f"  {source}  {count:>4}  {titles.get(source, '')}")
    click.echo("per flag:")
    for flag, count in numbers["per_flag"].items():
        click.echo(f"  {flag:<12} {count:>4}")


@kb.command()
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write the copy here (default: the backups folder)."
)
@click.pass_context
def backup(ctx: click.Context, out: Path | None) -> None:
    """Copy the database (items, quiz history, feedback) while it is in use."""
    try:
        store = _store(ctx)
        try:
            target = store.backup(out)
        finally:
            store.close()
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {store.path} to {target} ({target.stat().st_size / 1024:.0f} KiB)")


@kb.command()
@click.argument("backup_file", required=False, type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(backup_file: Path | None, yes: bool) -> None:
    """Put a backup (default: the newest) in place of the database; the current file is kept beside it.

    Stop the bot first: nothing else may have the database open.
    """
    from knowledge.backup import backups_dir, list_backups
    from knowledge.backup import restore as restore_database
    from knowledge.store import DB_NAME
    from tutor.settings import load_settings

    db_path = Path(load_settings().data_dir) / DB_NAME
    if backup_file is None:
        found = list_backups(db_path)
        if not found:
            raise click.ClickException(
                f"no backups in {backups_dir(db_path)}; name one: tutor kb restore FILE"
            )
        backup_file = found[0]
    if not yes:
        click.confirm(f"Replace {db_path} with {backup_file}?", abort=True)
    try:
        kept = restore_database(db_path, backup_file)
    except KnowledgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"restored {db_path} from {backup_file}" + (f"; the previous file is kept as {kept}" if kept else "")
    )
