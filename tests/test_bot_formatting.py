"""The splitting helper that keeps long answers inside Discord's limits."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.formatting import ELLIPSIS, shorten, shorten_block, split_text

FENCE_LINE = re.compile(r"^```[^\n`]*$", re.M)


def words(text: str) -> list[str]:
    """The visible words, ignoring the fences the splitter may add when it reopens a code block."""
    return [w for w in FENCE_LINE.sub(" ", text).split() if w != "```"]


def test_short_text_is_one_chunk() -> None:
    assert split_text("  a short answer \n", 2000) == ["a short answer"]
    assert split_text("   ", 2000) == []


def test_paragraphs_are_preferred_over_lines_and_words() -> None:
    text = ("alpha " * 150).strip() + "\n\n" + ("beta " * 150).strip()
    chunks = split_text(text, 1000)
    assert chunks == [("alpha " * 150).strip(), ("beta " * 150).strip()]


def test_words_are_never_cut() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    chunks = split_text(text, 2000)
    assert all(len(c) <= 2000 for c in chunks) and len(chunks) > 1
    assert words("\n".join(chunks)) == words(text)
    assert all(re.fullmatch(r"(word\d+ ?)+", c) for c in chunks)


def test_code_block_kept_whole_when_it_fits() -> None:
    code = "```python\n" + "\n".join(f"x = {i}" for i in range(100)) + "\n```"
    text = "intro " * 300 + "\n\n" + code + "\n\nafter"
    chunks = split_text(text, 2000)
    assert any(code in c for c in chunks)
    assert all(c.count("```") % 2 == 0 for c in chunks)


def test_long_code_block_is_closed_and_reopened() -> None:
    body = "\n".join(f"    value_{i} = compute({i})" for i in range(300))
    chunks = split_text(f"Here:\n```py\n{body}\n```\nDone.", 2000)
    assert len(chunks) > 2 and all(len(c) <= 2000 for c in chunks)
    code_chunks = [c for c in chunks if "```" in c]
    assert all(c.count("```") == 2 for c in code_chunks)
    assert all(re.search(r"^```py$", c, re.M) for c in code_chunks), "the language is kept"
    lines = [ln for c in code_chunks for ln in c.splitlines() if ln.startswith("    value_")]
    assert lines == body.splitlines(), "every code line survives whole and indented"


def test_a_single_huge_word_is_hard_cut() -> None:
    chunks = split_text("a" * 4500, 2000)
    assert [len(c) for c in chunks] == [2000, 2000, 500]


def test_shorten() -> None:
    assert shorten("short", 10) == "short"
    out = shorten("What is the size of the receptive field after two convolutions?", 40)
    assert len(out) <= 40 and out.endswith(ELLIPSIS) and out == "What is the size of the receptive field…"
    assert shorten("x" * 300, 80) == "x" * 79 + ELLIPSIS
    assert shorten("multi\nline\ttext", 80) == "multi line text"


def test_shorten_block_keeps_lines_and_closes_code() -> None:
    grid = "```\n[-1 -1 -1]\n[ 0  0  0]\n[ 1  1  1]\n```"
    assert shorten_block(f"  {grid}\n", 1024) == grid  # fits: whole, rows on their own lines
    long = "The kernel:\n\n" + grid + "\n\n" + "word " * 300
    cut = shorten_block(long, 200)
    assert len(cut) <= 200 and cut.endswith(ELLIPSIS) and grid in cut
    code = "```\n" + "\n".join(f"row {i}" for i in range(100)) + "\n```"
    cut = shorten_block(code, 100)
    assert len(cut) <= 100 and cut.endswith("```\n" + ELLIPSIS) and cut.count("```") == 2


@pytest.mark.parametrize("limit", [2000, 4096])
def test_limits_constant(limit: int) -> None:
    text = "\n".join(["```", "code " * 1000, "```", "prose " * 2000])
    assert all(len(c) <= limit for c in split_text(text, limit))


text_parts = st.one_of(
    st.text(min_size=0, max_size=300),
    st.builds(
        lambda w, n: " ".join([w] * n), st.text("abcxyz", min_size=1, max_size=30), st.integers(1, 200)
    ),
    st.builds(
        lambda lang, body: f"```{lang}\n{body}\n```",
        st.sampled_from(["", "py", "python", "text"]),
        st.text("ab c\n=_()", min_size=0, max_size=1500),
    ),
    st.just("\n\n"),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(text_parts, max_size=12), st.sampled_from([100, 500, 2000]))
def test_split_properties(parts: list[str], limit: int) -> None:
    text = "\n".join(parts)
    chunks = split_text(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert words("\n".join(chunks)) == words(text)
    if "```" not in text:
        # without code blocks no word (whitespace-free run) is cut unless it exceeds the limit
        assert all(w in words(text) for c in chunks for w in c.split() if len(w) < limit)


def test_long_answer_embeds_respect_discord_limits() -> None:
    """A 9,000-character answer with a long code block: every embed within limits, nothing cut."""
    from bot.exts.ask._embeds import answer_embeds
    from index.answer import Answer, Citation

    code = "```python\n" + "\n".join(f"layer_{i} = nn.Conv2d({i}, {i + 1}, 3)" for i in range(120)) + "\n```"
    text = (
        ("A receptive field grows with depth. " * 120) + "\n\n" + code + "\n\n" + ("Stride matters. " * 150)
    )
    answer = Answer(
        status="answered",
        query="q " * 300,
        answer=text,
        question="What is a “receptive field”? " * 12,
        item_id=1,
        source="s.txt",
        n=3,
        score=0.9,
        citations=tuple(Citation("s.txt", i, "A document title " * 5, i) for i in range(1, 40)),
    )
    embeds = answer_embeds(answer)
    all_embeds = [embeds.first, *embeds.more]
    assert len(all_embeds) >= 3
    assert len(embeds.first) <= 6000 and len(embeds.first.title or "") <= 256
    assert all(len(f.value or "") <= 1024 for f in embeds.first.fields)
    assert all(len(e.description or "") <= 4096 and len(e) <= 6000 for e in all_embeds)
    assert all((e.description or "").count("```") % 2 == 0 for e in all_embeds)
    assert words("\n".join(e.description or "" for e in all_embeds)) == words(text)
