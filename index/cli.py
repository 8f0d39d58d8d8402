"""`tutor ask`, `tutor chat`, `tutor eval`: the retrieval service in the terminal."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from pathlib import Path

import click

from index.answer import ANSWERED, NO_ANSWER_TEXT, NO_MATCH, Answer, variant_text


def _retriever():
    from index.errors import RetrievalError
    from knowledge.errors import KnowledgeError
    from tutor.services import open_retriever
    from tutor.settings import load_settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return open_retriever(load_settings().data_dir)
    except (RetrievalError, KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None


def format_answer(answer: Answer, width: int = 100) -> str:
    """Readable multi-line text of an answer (shared by `tutor ask` and `tutor chat`)."""

    def wrap(text: str, indent: str = "  ") -> str:
        return "\n".join(
            textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
            if line.strip()
            else ""
            for line in text.splitlines()
        )

    if answer.status == NO_MATCH:
        if answer.variant:
            lines = [variant_text(answer.variant)]
            if answer.alternatives:  # perhaps the kind the student meant is the one the notes cover
                lines.append("Closest entries:")
                lines += [f"  - {alt.question} ({alt.source} #{alt.n})" for alt in answer.alternatives]
            return "\n".join(lines)
        lines = ["That's not in my notes."]
        if answer.suggestions:
            lines.append("Topics I do know nearby: " + ", ".join(answer.suggestions) + ".")
        return "\n".join(lines)
    lines = []
    if answer.status != ANSWERED:
        lines.append(f"I'm not sure. My best guess (confidence {answer.score:.2f}):")
    lines.append(f"Q: {answer.question}")
    if answer.answer is not None:
        lines.append(wrap(answer.answer))
    else:
        lines.append(wrap(NO_ANSWER_TEXT.get(answer.no_answer_reason or "", "No answer in the source.")))
    cites = "; ".join(f"{c.title} ({c.source}, entry {c.n})" for c in answer.citations)
    lines.append(f"Source: {cites}")
    if answer.alternatives and (answer.status != ANSWERED or answer.answer is None):
        # A matched entry without an answer still leaves the student a question: offer the neighbours.
        lines.append("Did you mean:" if answer.answer is not None else "Related entries:")
        lines += [f"  - {alt.question} ({alt.source} #{alt.n})" for alt in answer.alternatives]
    return "\n".join(lines)


@click.command()
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--explain", is_flag=True, help="Show the scores behind the answer.")
def ask(question: tuple[str, ...], as_json: bool, explain: bool) -> None:
    """Answer QUESTION from the knowledge base; `-` reads one question per line from stdin."""
    retriever = _retriever()
    if question == ("-",):
        batch: list[str] = []
        for line in sys.stdin:
            if line.strip():
                batch.append(line.rstrip("\n"))
            if len(batch) == 64:
                _print_batch(retriever.ask_many(batch), as_json)
                batch = []
        if batch:
            _print_batch(retriever.ask_many(batch), as_json)
        return
    text = " ".join(question)
    answer = retriever.ask(text)
    if as_json:
        click.echo(json.dumps(answer.to_json(), ensure_ascii=False))
    else:
        click.echo(format_answer(answer))
    if explain:
        click.echo(json.dumps(retriever.explain(text), indent=2))


def _print_batch(answers: list[Answer], as_json: bool) -> None:
    for answer in answers:
        click.echo(
            json.dumps(answer.to_json(), ensure_ascii=False) if as_json else format_answer(answer) + "\n"
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
            last = retriever.ask(line)
            click.echo("tutor> " + format_answer(last).replace("\n", "\n       "))
    if interactive and readline is not None:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)


def _chat_quiz(words: list[str]) -> None:
    """`/quiz 5 mc dropout`: the same quiz as `tutor quiz`, inline; back to chatting when it ends."""
    from knowledge.quiz.cli import default_user, open_service, run_quiz, stdin_read
    from knowledge.quiz.models import QuizError
    from knowledge.quiz.selection import MODES

    options: dict = {}
    topic = [w for w in words if not (w.isdigit() or w in MODES or w == "review")]
    for word in words:
        if word.isdigit():
            options["n"] = int(word)
        elif word in MODES:
            options["mode"] = word
        elif word == "review":
            options["review_only"] = True
    service = open_service()
    try:
        run_quiz(service, default_user(), stdin_read, click.echo, topic=" ".join(topic) or None, **options)
    except QuizError as exc:
        click.echo(str(exc))
    finally:
        service.close()


@click.command("eval")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--misses", is_flag=True, help="List the queries that were not answered correctly.")
def eval_cmd(file: Path | None, as_json: bool, misses: bool) -> None:
    """Hit@1, Hit@3, MRR, abstention on FILE (default ../shared/eval/dev_queries.jsonl)."""
    from index.evaluate import DEFAULT_QUERIES, load_queries, run_eval

    path = file or DEFAULT_QUERIES
    if not path.exists():
        raise click.ClickException(f"{path}: no such query file")
    try:
        queries = load_queries(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    report = run_eval(_retriever(), queries)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo(f"{path}: {report.n_in} in-KB queries, {report.n_out} out-of-KB queries")
        click.echo(f"  Hit@1 {report.hit1:.3f}   Hit@3 {report.hit3:.3f}   MRR {report.mrr:.3f}")
        click.echo(f"  abstention {report.abstention:.3f}   false abstention {report.false_abstention:.3f}")
    if misses:
        for miss in report.misses:
            click.echo("  miss: " + json.dumps(miss, ensure_ascii=False))
