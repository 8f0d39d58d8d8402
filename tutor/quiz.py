"""`tutor quiz` and `tutor stats`: the quiz in the terminal, on the same store and schedule as Discord.

``run_quiz`` is the whole interactive loop over injected ``read``/``echo`` functions, so `tutor chat`'s
``/quiz`` runs exactly the same quiz inline. The terminal has no space (``knowledge.scope``): its quizzes,
topics and statistics are the shared notes' (with the owners' everywhere corrections), as in direct messages.
"""

from __future__ import annotations

import getpass
import json
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from knowledge.errors import KnowledgeError, ParseError
from knowledge.models import CLOZE, NOT_SERVABLE
from knowledge.parsers.bounds import load_json
from knowledge.quiz.models import Graded, Question, QuizError, Session
from knowledge.quiz.scheduler import RATING_NAMES, parse_rating
from knowledge.quiz.selection import AUTO, MC, MODES
from knowledge.readable import (
    readable,
    readable_line,
    render,
    stdout_is_terminal,
    terminal_width,
    to_plain,
)
from knowledge.scope import Scope
from tutor import services

Read = Callable[[str], str | None]  # None: end of input
Echo = Callable[[str], None]

SHARED = Scope.shared()  # the terminal's scope: the shared notes alone
QUIZ_HELP = "Type your answer. Commands: :hint  :skip  :reveal  :quit  (an empty line reveals the answer)"


def default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): one shared local learner
        return "local"


def open_service():
    """The command's quiz service (its root's, over the configured store ``TUTOR_DATA_DIR``): closed when
    the command ends, never by its user."""
    root = services.for_command()
    if not root.store.items():
        raise click.ClickException("the knowledge base is empty; run `tutor kb ingest` first")
    _grader()  # a broken shipped grader is a clear error, before the service is built with it
    return root.quiz()


def _grader(model_dir: Path | None = None):
    """The trained grader (shipped, or ``model_dir``); a broken model is a clear error, not a traceback."""
    from knowledge.quiz.learned import GraderModelError, load_grader

    try:
        return (
            services.quiz_grader() if model_dir is None else load_grader(services.encoder(), Path(model_dir))
        )
    except GraderModelError as exc:
        raise click.ClickException(str(exc)) from None


def _wrap(text: str, indent: str = "  ") -> str:
    return "\n".join(
        textwrap.fill(line, 100, initial_indent=indent, subsequent_indent=indent) if line.strip() else ""
        for line in text.splitlines()
    )


def _show_question(q: Question, echo: Echo, color: bool = False) -> None:
    tag = "new" if q.is_new else "review"
    width = terminal_width() if color else 100
    echo(f"\nQuestion {q.number}/{q.total}  [{tag} · {q.topic} · {q.source} #{q.n}]")
    echo(to_plain(readable(q.prompt), width))  # plain even in a terminal: a cloze blank is no markdown
    for i, choice in enumerate(q.choices):  # options are other cards' answers: LaTeX shown as text too
        first = f"  {chr(ord('A') + i)}) "
        echo(
            textwrap.fill(
                readable_line(choice), width, initial_indent=first, subsequent_indent=" " * len(first)
            )
        )
    if q.mode == MC:
        echo("  (answer with a letter)")


def _show_graded(g: Graded, echo: Echo, color: bool = False) -> None:
    """The grade, the reference answer as it reads (rich markdown with ``color``, else plain text)."""
    label = {"correct": "Correct", "partly": "Partly right", "wrong": "Not quite", "revealed": "Answer"}[
        g.verdict
    ]
    score = f" (score {g.score:.2f})" if g.verdict != "revealed" and g.mode != MC else ""
    echo(f"{label}{score}.")
    if g.mode == MC and g.correct_choice is not None:
        echo(f"  The answer is {chr(ord('A') + g.correct_choice)}.")
    echo("Reference answer:")
    echo(render(readable(g.reference), color=color, width=terminal_width() if color else 100))
    if g.missing and g.verdict in ("partly", "wrong"):
        echo("  Key terms you missed: " + ", ".join(g.missing[:6]))


def run_quiz(service, user_id: str, read: Read, echo: Echo, **options) -> Session | None:
    """Ask, grade, self-rate until the session ends; returns the final session (None if none could start).

    ``color=True`` renders answers' markdown for a terminal (rich); the default is plain text.
    """
    resume = options.pop("resume", True)
    color = bool(options.pop("color", False))
    scope = options.pop("scope", SHARED)
    session = service.active_session(user_id, scope) if resume else None
    if session is not None:
        reply = read(f"Resume your quiz in progress ({session.position + 1}/{session.total})? [Y/n] ")
        if reply is None:
            return session
        if reply.strip().lower() in ("n", "no"):
            session = None
    if session is None:
        session = service.start(user_id, scope=scope, **options)
    if session.total == 0:
        due = service.next_due(user_id, scope)
        echo("Nothing to quiz" + (f"; next card due {due:%Y-%m-%d %H:%M} UTC." if due else "."))
        return session
    echo(f"Quiz: {session.total} question{'s' if session.total != 1 else ''}. {QUIZ_HELP}")
    while (question := service.question(session)) is not None:
        if question.phase in ("answered", "rated") and question.graded is not None:
            graded = question.graded  # resumed after an answer: go straight to rating
        else:
            _show_question(question, echo, color)
            graded = None
        while graded is None:
            reply = read("answer> ")
            if reply is None or reply.strip() == ":quit":
                return _finish(service, service.end(session), echo)
            text = reply.strip()
            if text == ":hint":
                echo("Hint: " + (service.hint(session) or "no hint for this one."))
            elif text == ":skip":
                service.skip(session)
                echo("Skipped.")
                break
            elif text in ("", ":reveal"):
                graded = service.reveal(session)
            elif text in (":help", ":?"):
                echo(QUIZ_HELP)
            else:
                try:
                    graded = service.answer(session, text)
                except QuizError as exc:
                    echo(str(exc))
        if graded is None:
            continue
        _show_graded(graded, echo, color)
        suggested = RATING_NAMES[parse_rating(graded.suggested_rating)]
        contestable = graded.contestable
        extra = " [c]ontest the grade" if contestable else ""
        while True:
            reply = read(
                f"How well did you know it? [a]gain [h]ard [g]ood [e]asy{extra} (Enter: {suggested}) "
            )
            if reply is None or not reply.strip():
                break
            if contestable and reply.strip().lower() in ("c", "contest"):
                service.contest(session, graded.position)
                echo(
                    "  Noted: the grade goes to an admin to check (`tutor quiz contests`). Now rate yourself."
                )
                contestable, extra = False, ""
                continue
            try:
                graded = service.rate(session, reply)
                break
            except (ValueError, QuizError) as exc:
                echo(str(exc))
        echo(f"  Rated {RATING_NAMES[parse_rating(graded.rating)]}; next review {graded.interval}.")
    return _finish(service, service.session(session), echo)


def _finish(service, session: Session, echo: Echo) -> Session:
    echo(
        f"\nQuiz {'complete' if session.status == 'finished' else 'ended'}: {session.answered} answered "
        f"({session.correct} correct, {session.partly} partly, {session.wrong} wrong), {session.skipped} skipped."
    )
    due = service.next_due(session.user_id, Scope(session.scope))
    if due is not None:
        echo(f"Next card due {due:%Y-%m-%d %H:%M} UTC.")
    return session


def stdin_read(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


@click.group(invoke_without_command=True)
@click.option("--topic", help="Only cards on this topic (see --topics).")
@click.option("--source", help="Only cards from this document (file name, its prefix, or a title word).")
@click.option("-n", "n", default=10, show_default=True, help="Number of questions.")
@click.option("--mode", type=click.Choice(MODES), default=AUTO, show_default=True)
@click.option("--review", "review_only", is_flag=True, help="Only cards that are due.")
@click.option("--user", "user_id", help="Whose progress (default: your login name).")
@click.option("--new", "fresh", is_flag=True, help="Start a new quiz even if one is in progress.")
@click.option("--topics", "list_topics", is_flag=True, help="List the topics and their card counts.")
@click.option(
    "--calibrate", is_flag=True, help="Grade the labelled answer set: accuracy and confusion matrix."
)
@click.option(
    "--search", is_flag=True, help="With --calibrate: grid-search the thresholds, 5-fold CV by item."
)
@click.pass_context
def quiz(ctx, topic, source, n, mode, review_only, user_id, fresh, list_topics, calibrate, search) -> None:
    """Quiz yourself with spaced repetition (FSRS), on the same store and schedule as Discord.

    Subcommands: `train` the grader, `grade` answers in bulk, `eval` the grader, review `contests`.
    """
    if ctx.invoked_subcommand is not None:
        return
    if calibrate:
        _calibrate(search)
        return
    try:
        service = open_service()
        if list_topics:
            for name, count in service.topics(SHARED):
                click.echo(f"  {count:>4}  {name}")
            return
        run_quiz(
            service, user_id or default_user(), stdin_read, click.echo, topic=topic, source=source, n=n,
            mode=mode, review_only=review_only, color=stdout_is_terminal(),
            **({"resume": False} if fresh else {}),
        )  # fmt: skip
    except (QuizError, KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None


def _calibrate(search: bool) -> None:
    from knowledge.quiz.calibrate import cross_validate, evaluate, load_labels
    from knowledge.quiz.calibrate import search as grid_search
    from knowledge.quiz.grading import Grader

    cases = load_labels()
    grader = Grader(services.encoder())
    click.echo(evaluate(grader, cases).format())
    if search:
        click.echo("\nbest on the whole set:\n" + grid_search(grader, cases).format(show_errors=False))
        click.echo(f"5-fold cross-validated accuracy (folds by item): {cross_validate(grader, cases):.3f}")


@click.command()
@click.option("--user", "user_id", help="Whose progress (default: your login name).")
@click.option("--topic", help="Only this topic's cards.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the progress plot (PNG)."
)
@click.option("--json", "as_json", is_flag=True, help="The numbers as JSON.")
def stats(user_id, topic, plot, as_json) -> None:
    """Reviews, retention, due cards and per-topic mastery (the numbers Discord's /stats shows)."""
    from dataclasses import asdict

    from knowledge.quiz.stats import format_stats, plot_stats

    try:
        service = open_service()
        result = service.stats(user_id or default_user(), topic=topic, scope=SHARED)
    except (QuizError, KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(asdict(result), default=str))
    else:
        click.echo(format_stats(result, datetime.now(UTC)))
    if plot is not None:
        try:
            plot_stats(result, plot)
        except OSError as exc:
            raise click.ClickException(f"cannot write the plot to {plot}: {exc.strerror or exc}") from None
        click.echo(f"plot written to {plot}")


# --- the grader ----------------------------------------------------------------------------------------


@quiz.command("grade")
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--json", "as_json", is_flag=True, help="Accepted for clarity: output is always JSON lines.")
def grade_cmd(file, as_json) -> None:
    """Grade answers in bulk: one {"source", "n", "answer"} per line -> {"verdict", "score", "missing"}.

    A line that cannot be graded (bad JSON, no such entry, an entry without an answer) gets an
    {"line", "error"} line of its own; the other lines are graded.
    """
    store = services.for_command().store
    items = {(it.source, it.n): it for it in store.items()}
    by_id = {it.id: it for it in items.values()}
    best = store.best_answers()  # a duplicate group is graded against its best answer, as the quiz does
    if not items:
        raise click.ClickException("the knowledge base is empty; run `tutor kb ingest` first")
    the_grader = _grader()
    for lineno, raw in enumerate(file, start=1):
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            continue
        try:
            try:
                row = load_json(line, "<answers>", lineno)  # nesting bounded: a hostile line is one error
            except ParseError as exc:
                raise ValueError(f"not JSON ({exc.message.removeprefix('invalid JSON: ')})") from None
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            item = items.get((row.get("source"), row.get("n")))
            if item is None:
                raise ValueError(f"no entry {row.get('n')!r} in {row.get('source')!r}")
            reference_item = by_id.get(best.get(item.group), item) if item.group is not None else item
            if reference_item.flags & NOT_SERVABLE:
                raise ValueError("that entry has no answer to grade against")
            answer = row.get("answer")
            if not isinstance(answer, str):
                raise ValueError("answer must be a string")
            grade = the_grader.grade(
                reference_item.answer, answer[:4000], question=item.question, cloze=CLOZE in item.flags
            )
            click.echo(
                json.dumps(
                    {
                        "line": lineno,
                        "verdict": grade.verdict,
                        "score": grade.score,
                        "missing": list(grade.missing),
                    }
                )
            )
        except (ValueError, TypeError) as exc:
            click.echo(json.dumps({"line": lineno, "error": str(exc)[:300]}))


@quiz.command("eval")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="A grader from `tutor quiz train --out` instead of the shipped one.",
)
@click.option("--rules", is_flag=True, help="The rule grader (key terms and similarity), the old baseline.")
def eval_cmd(files, as_json, model_dir, rules) -> None:
    """The grader on graded answers: three-way and correct-vs-not accuracy, the confusion matrix.

    Default: the fresh authors of ``data/fresh/`` and the 180 older calibration answers, none of which the
    shipped grader learned from. The blind authors of ``data/answers/`` are its training data (each answer
    finds itself in the bank); judge on one of them with a model trained without it (``--model``).
    """
    from knowledge.quiz.calibrate import FRESH_DIR, LABELS, evaluate, load_labels
    from knowledge.quiz.grading import Grader

    the_grader = Grader(services.encoder()) if rules else _grader(model_dir)
    defaults = (*sorted(FRESH_DIR.glob("*.jsonl")), LABELS)
    for path in files or defaults:
        try:
            report = evaluate(the_grader, load_labels(Path(path)))
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        if as_json:
            click.echo(json.dumps({"file": str(path), **report.figures()}))
        else:
            click.echo(f"{path}:")
            click.echo(report.format(show_errors=False))


@quiz.command("train")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the grader (default: the shipped knowledge/quiz/model/).",
)
@click.option(
    "--exclude-author",
    "exclude",
    multiple=True,
    help="Leave an author's answers out (e.g. a4, the validation author).",
)
@click.option("--with-feedback", is_flag=True, help="Add the contested grades an admin confirmed.")
def train_cmd(out, exclude, with_feedback) -> None:
    """Fit the grader on the blind authors' answers (fixed settings and seed; about 25 s on 2 cores)."""
    from knowledge.quiz.learned import MODEL_DIR
    from knowledge.quiz.train import feedback_answers, load_training, train_grader

    extra = []
    if with_feedback:
        extra = feedback_answers(services.for_command().store)
        click.echo(f"{len(extra)} confirmed contests added as training answers")
    try:
        train_grader(out or MODEL_DIR, load_training(exclude, extra), services.encoder(), progress=click.echo)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@quiz.command("contests")
@click.option(
    "--status", type=click.Choice(["pending", "confirmed", "rejected"]), default="pending", show_default=True
)
@click.option("--confirm", "confirm_id", type=int, help="Confirm this contested grade (with --label).")
@click.option(
    "--label", type=click.Choice(["correct", "partly", "wrong"]), default="correct", show_default=True
)
@click.option("--reject", "reject_id", type=int, help="Reject this contested grade.")
def contests_cmd(status, confirm_id, label, reject_id) -> None:
    """Grades learners contested ("I think I was right"): list them, confirm one as a grade, or reject it.

    Confirmed ones are kept, with the grade an admin gave, as labelled answers for the grader.
    """
    try:
        service = open_service()
        if confirm_id is not None or reject_id is not None:
            decided = service.decide_contest(
                confirm_id if confirm_id is not None else reject_id,
                label if confirm_id is not None else None,
                default_user(),
            )
            click.echo(
                f"contest {decided['id']}: {decided['status']}"
                + (f" as {decided['label']}" if decided["label"] else "")
            )
            return
        for row in service.contests(status):
            click.echo(
                f"{row['id']:>5}  {row['source']}#{row['n']}  graded {row['verdict']}, claims {row['claimed']}"
                f"  {row['user_id']}  {row['answer'][:80]!r}"
            )
    except (QuizError, KnowledgeError) as exc:
        raise click.ClickException(str(exc)) from None
