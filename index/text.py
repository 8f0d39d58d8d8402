"""Turn a chat message into a retrieval query: the way students write is not the way questionnaires are.

Pure string work (no model): strip greetings and sign-offs, Discord mentions and markdown (code keeps its
text), and spell out the field's abbreviations (lr, bn, sgd, knn, ...; the glossary the quiz grader uses
too, :mod:`knowledge.words`). The glossary only expands shorthand; it never spells out what a term means
(that would be answering, not reading, the question). Typo correction needs the knowledge base's
vocabulary and lives in :mod:`index.lexical`.
"""

from __future__ import annotations

import re

from knowledge.words import ABBREVIATIONS, BRITISH_SPELLINGS

MAX_QUERY_CHARS = 2000  # longer messages are truncated before embedding (the model sees 256 tokens anyway)

# The short forms the notes write themselves: a query keeps them after the words (lexical search matches
# either, "stochastic gradient descent SGD").
_NOTES_WRITE = {"sgd": "SGD", "cnn": "CNN", "fp16": "fp16"}
# Chat shorthand and contractions as students type them.
CHAT_SHORTHAND: dict[str, str] = {
    "w/": "with",
    "w/o": "without",
    "thx": "thanks",
    "pls": "please",
    "plz": "please",
    "u": "you",
    "ppl": "people",
    "tmrw": "tomorrow",
    "diff": "difference",
    "ur": "your",
    "whats": "what is",
    "what's": "what is",
    "hows": "how is",
    "whys": "why is",
    "dont": "do not",
    "doesnt": "does not",
    "isnt": "is not",
    "cant": "can not",
}
# What a query spells out: the field's abbreviations and British spellings (``knowledge.words``, shared with
# the grader), the notes' own spelling of a few terms, and chat shorthand.
QUERY_EXPANSIONS: dict[str, str] = {
    **{
        short: f"{long} {_NOTES_WRITE[short]}" if short in _NOTES_WRITE else long
        for short, long in ABBREVIATIONS.items()
    },
    **BRITISH_SPELLINGS,
    "bias/variance": "bias variance",
    "one-cycle": "1cycle",
    "onecycle": "1cycle",
    "nchw": "NCHW",
    "relu": "ReLU",
    **CHAT_SHORTHAND,
}
# "1-nn", "5-nn": nearest neighbour with k neighbours, not a neural network.
_K_NN = re.compile(r"\b(\d+|k)[- ]?nn\b", re.IGNORECASE)

_MENTION = re.compile(r"<(@[!&]?|#)\d+>|@(everyone|here)\b")
_CODE_FENCE = re.compile(r"```(?:[a-zA-Z0-9_+-]*\n)?(.*?)```", re.DOTALL)
_GREETING = re.compile(
    r"^\s*(?:(?:hey|hi|hello|yo|hiya|howdy|ok|okay|so|um+|uh+|sorry|quick (?:one|question|q)|"
    r"question|q|random question|dumb question|stupid question|noob question|bot|tutor|there|all|guys|folks|"
    r"please|pls|plz|help)\b[\s,!:.\-–—]*)+",
    re.IGNORECASE,
)
_LEADIN = re.compile(
    r"^\s*(?:(?:can|could|would) (?:you|u|someone|anyone) (?:please |pls )?(?:tell me|explain(?: to me)?|"
    r"remind me|help me understand)|(?:i was |i'm |im )?(?:wondering|confused about|curious)(?: about)?|"
    r"i (?:don't|dont|do not) (?:get|understand)|(?:please )?explain(?: to me)?|tell me|remind me|"
    r"(?:do )?(?:you|u) know|i (?:want|need) to know)\b[\s,:\-]*",
    re.IGNORECASE,
)
_SIGNOFF = re.compile(
    r"[\s,.!-]*\b(?:thanks?(?: you)?(?: so much| a lot)?|thx|ty|cheers|please|pls|plz|lol|haha)\b[\s!.:)]*$",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.?!])\s+")
_QUESTION_START = re.compile(
    r"^(what|why|how|when|where|which|who|whats|is|are|do|does|did|can|could|should|would|will|explain|"
    r"define|describe|difference|compare)\b",
    re.IGNORECASE,
)


def clean_message(text: str, keep_context: bool = True) -> str:
    """A chat message as the model should read it: mentions, markdown and greetings removed.

    Context sentences and code stay (they often carry the subject: "my prof keeps saying NCHW ...");
    ``keep_context=False`` keeps only the question sentences, the older rule the ablation compares with.
    """
    if not isinstance(text, str):
        raise TypeError(f"query must be a str, not {type(text).__name__}")
    text = text[:MAX_QUERY_CHARS]
    text = _MENTION.sub(" ", text)
    text = _CODE_FENCE.sub(lambda m: " " + m.group(1) + " ", text)
    text = text.replace("`", "").replace("**", "").replace("__", " ").replace("*", "")
    text = " ".join(text.split())
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    if len(sentences) > 1 and not keep_context:
        asked = [s for s in sentences if s.rstrip().endswith("?") or _QUESTION_START.match(_strip_chatter(s))]
        if asked:
            sentences = asked
    cleaned = " ".join(_strip_chatter(s) for s in sentences).strip()
    return cleaned or text.strip()


def _strip_chatter(sentence: str) -> str:
    previous = None
    while previous != sentence:
        previous = sentence
        sentence = _GREETING.sub("", sentence)
        sentence = _LEADIN.sub("", sentence)
        sentence = _SIGNOFF.sub("", sentence)
    return sentence.strip(" -–—:,")


def expand_abbreviations(text: str) -> str:
    """Spell out the field's shorthand so the embedding model sees the words the sources use."""
    text = _K_NN.sub(lambda m: f"{m.group(1)}-nearest neighbor", text)

    def replace(match: re.Match) -> str:
        word = match.group(0)
        return QUERY_EXPANSIONS.get(word.lower(), word)

    # Whole words only, and never inside dotted code such as nn.ReLU, F.relu or params.data (a word is taken
    # whole, possessively: never its shorter "param" before "s.data").
    return re.sub(r"(?<![\w/.-])[A-Za-z][\w'/-]*+(?!\.\w)", replace, text)


def retrieval_query(text: str, keep_context: bool = True, glossary: bool = True) -> str:
    """What the retriever embeds and searches for a message: clean_message, then (optionally)
    expand_abbreviations."""
    cleaned = clean_message(text, keep_context)
    return expand_abbreviations(cleaned) if glossary else cleaned
