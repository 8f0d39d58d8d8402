"""`tutor ask`, `tutor chat`, `tutor eval` and `tutor index train`: retrieval in the terminal.

Nothing heavy at import: `tutor ask` loads the models only once it has a question (tests/test_cli.py).
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from pathlib import Path

import click

from index.answer import ANSWERED, NO_ANSWER, NO_ANSWER_TEXT, NO_MATCH, Answer
from index.errors import RetrievalError
from knowledge.readable import readable, readable_line, render, stdout_is_terminal, terminal_width
from tutor import services


def _retriever(model_dir: Path | None = None):
    """The command's retriever (its root's, over the configured store); a first index build shows a bar."""
    from knowledge.errors import KnowledgeError
    from tutor.progress import embedding_bar

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        with embedding_bar(waiting="loading the language model") as bar:  # on a terminal only
            retriever = services.for_command().retriever(model_dir, progress=bar)
    except (RetrievalError, KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None
    retriever.encoder.progress = None  # the bar is gone; later rebuilds (a reload) are silent
    return retriever


def format_answer(answer: Answer, width: int = 100, *, color: bool = False) -> str:
    """Readable multi-line text of an answer (shared by `tutor ask` and `tutor chat`).

    The answer reads as ``knowledge.readable`` makes it (LaTeX as text, wrapped lines joined), its markdown
    rendered by rich with ``color`` (stdout is a terminal), else plainly, without ANSI codes.
    """

    def wrap(text: str, indent: str = "  ") -> str:
        return "\n".join(
            textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
            if line.strip()
            else ""
            for line in text.splitlines()
        )

    if answer.status == NO_MATCH:
        lines = ["That's not in my notes."]
        if answer.suggestions:
            lines.append("Topics I do know nearby: " + ", ".join(answer.suggestions) + ".")
        return "\n".join(lines)
    lines = []
    if answer.status not in (ANSWERED, NO_ANSWER):
        lines.append(f"I'm not sure. My best guess (confidence {answer.score:.2f}):")
    lines.append(f"Q: {readable_line(answer.question)}")
    if answer.answer is not None:
        lines.append(render(readable(answer.answer), color=color, width=width))
    else:
        lines.append(wrap(NO_ANSWER_TEXT.get(answer.no_answer_reason or "", "No answer in the source.")))
    cites = "; ".join(f"{c.title} ({c.source}, entry {c.n})" for c in answer.citations)
    lines.append(f"Source: {cites}")
    if answer.alternatives and (answer.status != ANSWERED or answer.answer is None):
        # A matched entry without an answer still leaves the student a question: offer the neighbours.
        lines.append("Did you mean:" if answer.answer is not None else "Related entries:")
        lines += [f"  - {readable_line(alt.question)} ({alt.source} #{alt.n})" for alt in answer.alternatives]
    return "\n".join(lines)


def answer_json(answer: Answer) -> dict:
    """`tutor ask --json`: ``Answer.to_json``, the answer's text as it reads (markdown kept, as Discord)."""
    shown = answer.to_json()
    if answer.answer is not None:
        shown["answer"] = readable(answer.answer)
    return shown


@click.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--explain", is_flag=True, help="Show the scores behind the answer.")
def ask(question: tuple[str, ...], as_json: bool, explain: bool) -> None:
    """Answer QUESTION from the knowledge base; `-` reads one question per line from stdin."""
    if not " ".join(question).strip():  # before the model loads
        raise click.UsageError('ask me a question, e.g. tutor ask "what is a receptive field"')
    retriever = _retriever()
    if question == ("-",):
        batch: list[str] = []
        for line in sys.stdin:  # decoded with replacement (tutor.cli): a bad byte is one odd question
            if line.strip():
                batch.append(line.rstrip("\n"))
            if len(batch) == 64:
                _print_batch(retriever, batch, as_json)
                batch = []
        if batch:
            _print_batch(retriever, batch, as_json)
        return
    text = " ".join(question)
    try:
        answer = retriever.ask(text)
        explained = retriever.explain(text) if explain else None
    except RetrievalError as exc:  # e.g. bytes that are not UTF-8 in the argument (lone surrogates)
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(answer_json(answer), ensure_ascii=False))
    else:
        color = stdout_is_terminal()
        click.echo(format_answer(answer, terminal_width() if color else 100, color=color))
    if explained is not None:
        click.echo(json.dumps(explained, indent=2))


def _print_batch(retriever, batch: list[str], as_json: bool) -> None:
    """One output per question, in order; a question that cannot be answered gets its error, not the batch."""
    try:
        answers: list[Answer | RetrievalError] = list(retriever.ask_many(batch))
    except RetrievalError:
        answers = []
        for text in batch:
            try:
                answers.append(retriever.ask(text))
            except RetrievalError as exc:
                answers.append(exc)
    color = not as_json and stdout_is_terminal()
    width = terminal_width() if color else 100
    for text, answer in zip(batch, answers, strict=True):
        if isinstance(answer, RetrievalError):
            error = {"query": text, "error": str(answer)}
            click.echo(json.dumps(error, ensure_ascii=False) if as_json else f"Error: {answer}\n")
        else:
            click.echo(
                json.dumps(answer_json(answer), ensure_ascii=False)
                if as_json
                else format_answer(answer, width, color=color) + "\n"
            )


CHAT_HELP = """Commands:
  /help           this help
  /sources        the documents I answer from
  /more           the alternatives for the last answer
  /quiz [n] [mode] [topic]  a spaced-repetition quiz right here (mode: free, mc, cloze, auto, review)
  /quit           leave (or Ctrl-D)
Anything else is a question."""


@click.command()
def chat() -> None:
    """Talk to the tutor in the terminal (readline history; /help for commands)."""
    import contextlib

    retriever = _retriever()
    history = Path.home() / ".tutor_history"
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline

            with contextlib.suppress(OSError):
                readline.read_history_file(history)
        except ImportError:  # pragma: no cover - readline is missing on some platforms
            readline = None
    click.echo("Deep-learning tutor. Ask me about the course notes; /help for commands, /quit to leave.")
    last: Answer | None = None
    while True:
        try:
            line = input("you> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            click.echo("")
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/help":
            click.echo(CHAT_HELP)
        elif line == "/sources":
            for source, title in sorted(retriever.titles.items()):
                click.echo(f"  {source}  {title}")
        elif line == "/more":
            if last is None or not last.alternatives:
                click.echo("No alternatives to show.")
            for alt in last.alternatives if last else ():
                click.echo(f"  - {alt.question} ({alt.source} #{alt.n}, score {alt.score:.2f})")
        elif line == "/quiz" or line.startswith("/quiz "):
            _chat_quiz(line.split()[1:])
        elif line.startswith("/"):
            click.echo(f"Unknown command {line.split()[0]}. " + CHAT_HELP.splitlines()[0] + " /help")
        else:
            try:
                last = retriever.ask(line)
            except RetrievalError as exc:  # one unreadable message, not the end of the conversation
                click.echo(f"tutor> I could not read that question ({exc}).")
                continue
            color = stdout_is_terminal()
            shown = format_answer(last, terminal_width(indent=7) if color else 100, color=color)
            click.echo("tutor> " + shown.replace("\n", "\n       "))
    if interactive and readline is not None:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)


def _chat_quiz(words: list[str]) -> None:
    """`/quiz 5 mc dropout`: the same quiz as `tutor quiz`, inline; back to chatting when it ends."""
    from knowledge.errors import KnowledgeError
    from knowledge.quiz.models import QuizError
    from knowledge.quiz.selection import MODES
    from tutor.quiz import default_user, open_service, run_quiz, stdin_read

    options: dict = {}
    topic = [w for w in words if not (w.isdigit() or w in MODES or w == "review")]
    for word in words:
        if word.isdigit():
            options["n"] = int(word)
        elif word in MODES:
            options["mode"] = word
        elif word == "review":
            options["review_only"] = True
    try:
        service = open_service()  # on the retriever's store; closed when the chat ends, not here
    except (click.ClickException, KnowledgeError) as exc:  # an empty or read-only base: the chat goes on
        click.echo(exc.format_message() if isinstance(exc, click.ClickException) else str(exc))
        return
    try:
        run_quiz(
            service, default_user(), stdin_read, click.echo, topic=" ".join(topic) or None,
            color=stdout_is_terminal(), **options,
        )  # fmt: skip
    except (QuizError, KnowledgeError) as exc:
        click.echo(str(exc))


@click.command("eval")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file (overall and per style).")
@click.option("--misses", is_flag=True, help="List the messages that were not served right.")
@click.option(
    "--plot", type=click.Path(path_type=Path), help="Draw the risk-coverage curve of all FILES here."
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="A model from `tutor index train --out` instead of the shipped one.",
)
def eval_cmd(
    files: tuple[Path, ...], as_json: bool, misses: bool, plot: Path | None, model_dir: Path | None
) -> None:
    """Served@1, wrong, refused, rank@1, MRR per file and style (default: the validation sets)."""
    from index.evaluate import (
        by_style,
        default_query_files,
        load_queries,
        plot_risk_coverage,
        run_eval,
        summarize,
    )

    paths = list(files) or default_query_files()
    retriever = _retriever(model_dir)
    everything = []
    for path in paths:
        if not path.is_file():
            raise click.ClickException(f"{path}: no such query file")
        try:
            queries = load_queries(path)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        outcomes = run_eval(retriever, queries)
        everything += outcomes
        report, styles = summarize(outcomes), by_style(outcomes)
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "file": str(path),
                        **report.as_dict(),
                        "styles": {k: v.as_dict() for k, v in styles.items()},
                    }
                )
            )
        else:
            click.echo(f"{path}: {report.n_in} in the notes, {report.n_out} not")
            click.echo(_table([("all", report), *styles.items()]))
        if misses:
            for miss in report.misses:
                click.echo("  miss: " + json.dumps(miss, ensure_ascii=False))
    if plot is not None:
        model = retriever.model
        cutoffs = {"answered": model.answer_min, "unsure": model.unsure_min}
        written = plot_risk_coverage(
            everything, cutoffs, plot, f"Risk-coverage on {len(everything)} messages"
        )
        click.echo(f"risk-coverage plot: {written}")


def _table(rows) -> str:
    header = f"  {'style':<12} {'n':>4}  {'served@1':>8} {'wrong':>6} {'refused':>7} {'rank@1':>6} {'MRR':>6}  {'out: answered':>13} {'unsure':>6}"
    lines = [header]
    for name, r in rows:
        inside = (
            f"{r.served:8.3f} {r.wrong:6.3f} {r.refused:7.3f} {r.rank1:6.3f} {r.mrr:6.3f}"
            if r.n_in
            else " " * 40
        )
        outside = f"{r.out_answered:13.3f} {r.out_unsure:6.3f}" if r.n_out else ""
        lines.append(f"  {name:<12} {r.n_in + r.n_out:>4}  {inside}  {outside}".rstrip())
    return "\n".join(lines)


@click.group("index")
def index_group() -> None:
    """The retrieval model: train it from the shipped messages."""


@index_group.command("train")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Where to write the model (default: the shipped index/model/).",
)
@click.option(
    "--exclude-author",
    "exclude",
    multiple=True,
    help="Leave an author's messages out (e.g. w5, the validation author).",
)
@click.option("--with-feedback", is_flag=True, help="Add the store's Helpful votes as training messages.")
@click.option("--epochs", type=click.IntRange(1, 20), default=None, help="Adapter epochs (default 4).")
@click.option(
    "--limit",
    type=click.IntRange(10, None),
    default=None,
    help="Use only the first N messages of each file (a quick check).",
)
def train_cmd(
    out: Path | None, exclude: tuple[str, ...], with_feedback: bool, epochs: int | None, limit: int | None
) -> None:
    """Rebuild the query adapter, ranker, calibrator and cut-offs (fixed seeds; ~10 minutes on 2 cores)."""
    import dataclasses

    from index.model import MODEL_DIR
    from index.train import TrainSettings, feedback_queries, message_files, train

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    settings = TrainSettings() if epochs is None else dataclasses.replace(TrainSettings(), epochs=epochs)
    extra = []
    if with_feedback:
        extra = feedback_queries(services.for_command().store)
        click.echo(f"{len(extra)} helpful votes added as training messages")
    try:
        files = message_files(exclude)
        if limit is not None:
            files = _subset(files, limit)
        train(out or MODEL_DIR, files, settings, extra=extra, progress=click.echo)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _subset(files: list[Path], limit: int) -> list[Path]:
    """Copies of ``files`` with ``limit`` evenly spaced lines each (both kinds of message), in a temp folder."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="tutor-train-subset-"))
    cut = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        step = max(1, len(lines) // limit)
        target = folder / path.name
        target.write_text("".join(lines[::step][:limit]))
        cut.append(target)
    return cut
