"""`tutor kb ...`: ingest, list, show, count, remove, review, back up and restore knowledge-base items."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click
from click_didyoumean import DYMGroup

from knowledge.errors import KnowledgeError, NotFound
from knowledge.loader import (
    ALL_FORMATS,
    BUNDLED_ORIGIN,
    FILE_ORIGIN,
    GUILD_ORIGIN,
    SOURCES_DIR,
    collect_paths,
    load_document,
)
from knowledge.scope import EVERYWHERE, Scope
from tutor import services


def _store(ctx: click.Context):
    """The command's store (its root's: closed when the command ends)."""
    return services.for_command().store


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
@click.option(
    "--first-start",
    is_flag=True,
    help="Only when some bundled source is not in the knowledge base yet: a container's first start on a "
    "new volume, or one that was interrupted.",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    paths: tuple[Path, ...],
    fmt: str | None,
    quiet: bool,
    replace: bool,
    first_start: bool,
) -> None:
    """Parse documents (default: the bundled sources) into the store, then index them.

    Every file is parsed and checked before anything is written; each document is then published whole.
    A document is its origin plus its file name: a file named like a document from elsewhere is refused
    unless --replace is given. At most 100,000 entries per file.
    """
    from tutor.progress import embedding_bar

    with embedding_bar(enabled=not quiet) as bar:
        try:
            store = _store(ctx)
            if first_start and not paths:
                known = {d.source for d in store.documents()}  # removed ones included: they stay out
                pending = store.db.execute("SELECT 1 FROM documents WHERE analysed = 0 LIMIT 1").fetchone()
                if not pending and all(p.name in known for p in collect_paths((SOURCES_DIR,))):
                    if not quiet:
                        click.echo("the bundled notes are in the knowledge base: nothing to do", err=True)
                    return
            files = collect_paths(paths or (SOURCES_DIR,))
            removed = set() if paths else store.removed_sources()  # naming a file brings it back
            documents = []
            for path in files:
                if path.name in removed:
                    if not quiet:
                        click.echo(
                            f"skipped {path.name}: removed (`tutor kb ingest {path}` brings it back)",
                            err=True,
                        )
                    continue
                documents.append(load_document(path, fmt))
                if not quiet:
                    click.echo(f"parsed {path.name}: {len(documents[-1].entries)} entries", err=True)
            report = store.ingest(
                documents,
                services.entry_encoder(store, bar),
                progress=None if quiet else lambda m: click.echo(m, err=True),
                replace=replace,
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
            rebuilt = services.refresh_index(store, bar)
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
    from knowledge.readable import readable, render, stdout_is_terminal

    if item.answer:
        click.echo("A:\n" + render(readable(item.answer), color=stdout_is_terminal()))
    else:
        click.echo("A: (no answer in the source)")
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
        retired = Counter(it.source for it in store.items(include_retired=True) if it.retired)
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
    click.echo()
    live = numbers["per_source"]
    rows = [
        (source, str(live.get(source, 0)), str(retired.get(source, 0)),
         titles.get(source, "") + ("" if live.get(source) else "  (removed)"))
        for source in sorted({*live, *retired})
    ]  # fmt: skip
    _table(("source", "items", "retired", "title"), rows, right={1, 2})
    click.echo()
    _table(("flag", "items"), [(flag, str(count)) for flag, count in numbers["per_flag"].items()], right={1})


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> None:
    """Aligned columns on stdout: a rich table on a terminal (fitted to its width), plain text when piped
    (columns padded with spaces, no colour, nothing cut, so `grep` and `awk` see whole cells)."""
    from rich.cells import cell_len

    if sys.stdout.isatty():
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        last = len(headers) - 1
        for i, header in enumerate(headers):
            table.add_column(header, justify="right" if i in right else "left", no_wrap=i != last)
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # Text: a title's "[...]" is not markup
        Console().print(table)
        return
    widths = [max([cell_len(h)] + [cell_len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    for line in (tuple(h.upper() for h in headers), *rows):
        cells = []
        for i, (cell, width) in enumerate(zip(line, widths, strict=True)):
            pad = " " * (width - cell_len(cell))
            cells.append(pad + cell if i in right else cell + pad)
        click.echo("  ".join(cells).rstrip())


BRINGS_BACK = {
    BUNDLED_ORIGIN: "It is a bundled source: `tutor kb ingest` (and `make run`) now leave it out; "
    "`tutor kb ingest SOURCES/NAME` brings it back.",
    GUILD_ORIGIN: "They were a server's own cards: the server's next /kb add starts its deck afresh.",
}


@kb.command()
@click.argument("source")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless something goes wrong.")
@click.pass_context
def remove(ctx: click.Context, source: str, yes: bool, quiet: bool) -> None:
    """Retire a document (a deck) from answers, quizzes and the index.

    SOURCE is a document's name as `tutor kb stats` shows it, or the start of its name or title when that
    fits one document only. Nothing is deleted: its items keep their ids and quiz history (`tutor kb list
    --all --source NAME` shows them) and ingesting the file again brings them back. A removed bundled
    source stays out of `tutor kb ingest` (and `make run`) until its file is ingested by name.
    The index is rebuilt at once; a running bot answers from it until it restarts.
    """
    from index.errors import EmptyKnowledgeBase

    try:
        store = _store(ctx)
        live = store.stats()["per_source"]
        documents = {d.source: d.title for d in store.documents()}
        name = _resolve_source(source, live, documents)
        title, count = documents.get(name, ""), live[name]
        if not yes:
            if not _interactive():
                raise click.ClickException(
                    f"not removing {name} ({count} items): no terminal to confirm on; pass --yes"
                )
            click.confirm(
                f"Remove {name} ({title}, {count} items)? They are retired, not deleted", abort=True
            )
        report = store.remove_document(
            name, services.entry_encoder(store), progress=None if quiet else lambda m: click.echo(m, err=True)
        )
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    except KnowledgeError as exc:
        done = "its items are retired; the next ingest finishes the analysis" if exc.published else ""
        raise click.ClickException(f"{exc} ({done or 'nothing was changed'})") from None
    if not quiet:
        kept = f"{report.reviews} quiz reviews, {report.cards} card states"
        click.echo(
            f"removed {report.source} ({report.title}): {report.retired} items retired, kept in the database "
            f"with their quiz history ({kept}); `tutor kb list --all --source {report.source}` lists them"
        )
        origin = report.origin or ""
        click.echo(
            BRINGS_BACK.get(origin, "").replace("SOURCES/NAME", str(SOURCES_DIR / report.source))
            or f"`tutor kb ingest {origin[len(FILE_ORIGIN) :] if origin.startswith(FILE_ORIGIN) else 'FILE'}` "
            "brings it back."
        )
    try:  # like ingest: the next question should not wait for the index, nor find the deck in it
        rebuilt = services.refresh_index(store)
    except EmptyKnowledgeBase:
        if not quiet:
            click.echo("The knowledge base is now empty: nothing to index until the next `tutor kb ingest`.")
        return
    except Exception as exc:  # the store is changed either way; the next question rebuilds the index
        raise click.ClickException(f"removed, but the index could not be rebuilt: {exc}") from None
    if rebuilt and not quiet:
        click.echo(f"index rebuilt ({rebuilt})", err=True)


def _interactive() -> bool:
    """Whether someone can answer a question: stdin is a terminal (not a pipe, a file or a cron job)."""
    return sys.stdin.isatty()


def _resolve_source(wanted: str, live: dict[str, int], titles: dict[str, str]) -> str:
    """The live document ``wanted`` names: its exact name, else the one document whose name or title starts
    with it (case-insensitive). Anything else is a :class:`NotFound` listing the candidates."""
    if wanted in live:
        return wanted
    if wanted in titles:
        raise NotFound(f"{wanted} is already removed (all its items are retired)")
    key = wanted.strip().casefold()
    matches = [
        s
        for s in sorted(live)
        if key and (s.casefold().startswith(key) or titles.get(s, "").casefold().startswith(key))
    ]
    if len(matches) == 1:
        return matches[0]

    def listing(sources: Sequence[str]) -> str:
        width = max(len(s) for s in sources)
        return "".join(f"\n  {s:<{width}}  {titles.get(s, '')}".rstrip() for s in sources)

    if matches:
        raise NotFound(f"{wanted!r} fits {len(matches)} documents; name one:{listing(matches)}")
    if not live:
        raise NotFound("the knowledge base is empty: there is nothing to remove")
    raise NotFound(f"no document {wanted!r} in the knowledge base; the documents are:{listing(sorted(live))}")


# --- the owners' review of Not helpful answers ---------------------------------------------------------------
@kb.command()
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True, help="Which page to list.")
@click.option("--limit", type=click.IntRange(1, 50), default=10, show_default=True, help="Entries per page.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry (or for the action taken).")
@click.option(
    "--correct",
    "correct_id",
    type=int,
    metavar="ITEM_ID",
    help="Give the entry a corrected answer everywhere.",
)
@click.option("--answer", help="The corrected answer (with --correct).")
@click.option(
    "--answer-file",
    type=click.File("r", encoding="utf-8"),
    help="Read the corrected answer from a file ('-': standard input), with --correct.",
)
@click.option("--note", help="Why it was corrected (kept with the correction).")
@click.option(
    "--hide", "hide_id", type=int, metavar="ITEM_ID", help="Hide the entry everywhere: every server and DM."
)
@click.option(
    "--dismiss", "dismiss_id", type=int, metavar="ITEM_ID", help="Take the entry off the queue, nothing else."
)
@click.option("--by", help="Who is acting, kept with the change (default: your user name on this machine).")
@click.pass_context
def review(
    ctx: click.Context,
    page: int,
    limit: int,
    as_json: bool,
    correct_id: int | None,
    answer: str | None,
    answer_file,
    note: str | None,
    hide_id: int | None,
    dismiss_id: int | None,
    by: str | None,
) -> None:
    """The bundled notes' answers students marked Not helpful, in every server and DM; act on them.

    Lists the owners' queue, most voted then newest first: the questions asked, the answer shown, the
    votes and comments. A server's admins review their own server's votes with /review; the two queues are
    resolved separately. Then, for one entry:

    \b
      --correct ITEM_ID --answer TEXT (or --answer-file FILE)
          a corrected answer in every server and DM (where a server has
          its own correction, that one comes first). It is an overlay: the
          source file is never rewritten and `tutor kb ingest` keeps it;
          the original answer, who (--by) and when are kept with it.
      --hide ITEM_ID      hide the entry everywhere (never answered or quizzed).
      --dismiss ITEM_ID   take it off the owners' queue, changing nothing else.

    --hide takes a shared note only: a server's own card is its admins' to hide (/kb hide) or remove.

    \b
    A running bot uses a correction or a hide after its next reload
    (/owner reload, in the owners' server) or a restart.
    """
    from knowledge import cards, overrides

    actions = {"--correct": correct_id, "--hide": hide_id, "--dismiss": dismiss_id}
    chosen = [name for name, value in actions.items() if value is not None]
    if len(chosen) > 1:
        raise click.UsageError(f"one action at a time, not {' and '.join(chosen)}")
    if correct_id is None and (answer is not None or answer_file is not None or note is not None):
        raise click.UsageError("--answer, --answer-file and --note go with --correct ITEM_ID")
    if correct_id is not None and (answer is None) == (answer_file is None):
        raise click.UsageError("--correct needs the new answer: --answer TEXT or --answer-file FILE")
    author = by or _os_user()
    try:
        store = _store(ctx)
        if correct_id is not None:
            text = answer if answer is not None else answer_file.read(overrides.MAX_CORRECTION * 4 + 1)
            fixed = overrides.correct(store, EVERYWHERE, correct_id, text, author=author, note=note or "")
            votes = overrides.resolve(store, None, correct_id, overrides.Resolution.CORRECTED, author)
            _acted(as_json, "corrected", correct_id, votes, author, correction=fixed)
            return
        if hide_id is not None:
            item = cards.disable_everywhere(store, hide_id)  # shared notes only: not a card, not retired
            votes = overrides.resolve(store, None, hide_id, overrides.Resolution.HIDDEN, author)
            _acted(as_json, "hidden", item.id, votes, author)
            rebuilt = services.refresh_index(store)  # a disabled entry leaves the index
            if rebuilt and not as_json:
                click.echo(f"index rebuilt ({rebuilt})", err=True)
            return
        if dismiss_id is not None:
            votes = overrides.resolve(store, None, dismiss_id, overrides.Resolution.DISMISSED, author)
            if not votes:
                raise NotFound(f"item {dismiss_id} has no open Not helpful votes in the owners' queue")
            _acted(as_json, "dismissed", dismiss_id, votes, author)
            return
        queue = overrides.review_queue(store, None, offset=(page - 1) * limit, limit=limit)
        items = {e.item_id: store.item(e.item_id) for e in queue.entries}
        titles = {d.source: d.title for d in store.documents()}
        everywhere = overrides.load_overrides(store)
    except KnowledgeError as exc:
        raise click.ClickException(f"{exc} (nothing was changed)") from None
    pages = max(1, -(-queue.total // limit))
    if queue.total and not queue.entries:
        raise click.ClickException(f"page {page} is past the end: {queue.total} entries in {pages} pages")
    if as_json:
        for entry in queue.entries:
            item = items[entry.item_id]
            fixed = everywhere.correction(Scope.shared(), entry.item_id)
            record = {
                "item_id": entry.item_id, "source": item.source, "n": item.n, "title": titles.get(item.source, ""),
                "question": entry.question, "votes": entry.votes, "last_at": entry.last_at,
                "queries": list(entry.queries), "answer_shown": entry.answer_shown, "comments": list(entry.comments),
                "correction": None if fixed is None else _correction_json(fixed),
            }  # fmt: skip
            click.echo(json.dumps(record, ensure_ascii=False))
        return
    if not queue.total:
        click.echo("Nothing to review: no open Not helpful votes on the bundled notes.")
        return
    blocks = []
    for entry in queue.entries:
        item = items[entry.item_id]
        where = f"{titles.get(item.source, item.source)}, entry {item.n}"
        blocks.append(_review_block(entry, where, everywhere.correction(Scope.shared(), entry.item_id)))
    heading = (
        f"Not helpful on the bundled notes: {queue.total} entries, page {page} of {pages} "
        "(most voted, then newest, first)"
    )
    _print_blocks(heading, blocks)
    if page < pages:
        click.echo(f"more: tutor kb review --page {page + 1}")
    click.echo(
        "act on one: tutor kb review --correct ITEM_ID --answer TEXT | --hide ITEM_ID | --dismiss ITEM_ID"
    )


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment nor the password database (a bare container)
        return "owner"


def _correction_json(fixed) -> dict:
    return {
        "answer": fixed.answer, "original": fixed.original, "author": fixed.author,
        "created_at": fixed.created_at, "note": fixed.note,
    }  # fmt: skip


def _acted(as_json: bool, action: str, item_id: int, votes: int, author: str, correction=None) -> None:
    if as_json:
        record = {"action": action, "item_id": item_id, "resolved": votes, "by": author}
        if correction is not None:
            record["correction"] = _correction_json(correction)
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    resolved = f"{votes} Not helpful vote{'' if votes == 1 else 's'} resolved"
    if action == "corrected":
        click.echo(
            f"item {item_id} corrected everywhere by {author} ({resolved}). It is an overlay: the source is "
            "untouched and `tutor kb ingest` keeps it; a server's own correction still comes first there."
        )
    elif action == "hidden":
        click.echo(
            f"item {item_id} hidden everywhere: no server or DM is answered or quizzed with it ({resolved})."
        )
    else:
        click.echo(f"item {item_id} dismissed from the owners' queue ({resolved}); nothing else changed.")
    if action != "dismissed":
        click.echo(
            "A running bot uses it after its next reload (/owner reload, in the owners' server) or a restart.",
            err=True,
        )


def _review_block(entry, where: str, fixed) -> list[tuple[str, str]]:
    """One entry as (label, text) lines; the first is its heading."""
    from knowledge.readable import readable_line

    def one_line(text: str, limit: int = 300) -> str:
        text = readable_line(text)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    lines = [
        (
            "",
            f"#{entry.item_id}  {entry.votes} vote{'' if entry.votes == 1 else 's'}  last {entry.last_at}  {where}",
        ),
        ("Q", one_line(entry.question)),
        ("asked as", " · ".join(f"“{one_line(q, 120)}”" for q in entry.queries)),
        ("shown", one_line(entry.answer_shown) or "(nothing)"),
    ]
    lines += [("comment", f"“{one_line(c)}”") for c in entry.comments]
    if fixed is not None:
        lines.append(("corrected", f"by {fixed.author}, {fixed.created_at}: {one_line(fixed.answer)}"))
    return lines


def _print_blocks(heading: str, blocks: Sequence[list[tuple[str, str]]]) -> None:
    """Entries on stdout: bold headings and dim labels on a terminal, plain text when piped."""
    width = max(len(label) for block in blocks for label, _ in block)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False)
        console.print(Text(heading, style="bold"))
        for block in blocks:
            console.print()
            (_, head), *rest = block
            console.print(Text(head, style="bold cyan"))
            for label, text in rest:
                console.print(
                    Text.assemble(("  " + label.rjust(width) + "  ", "dim"), text)
                )  # Text: no markup
        return
    click.echo(heading)
    for block in blocks:
        click.echo()
        (_, head), *rest = block
        click.echo(head)
        for label, text in rest:
            click.echo(f"  {label.rjust(width)}  {text}")


@kb.command()
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write the copy here (default: the backups folder)."
)
@click.pass_context
def backup(ctx: click.Context, out: Path | None) -> None:
    """Copy the database (items, quiz history, feedback) while it is in use."""
    try:
        store = _store(ctx)
        target = store.backup(out)
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

    db_path = Path(services.for_command().settings.data_dir) / DB_NAME  # the store is never opened
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
