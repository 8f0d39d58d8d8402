"""Turn a chat message into a retrieval query: the way students write is not the way questionnaires are.

Pure string work (no model): strip greetings and sign-offs, Discord mentions and markdown (code keeps its
text), and spell out the field's abbreviations (lr, bn, sgd, knn, ...). The glossary only expands
shorthand; it never spells out what a term means (that would be answering, not reading, the question). Typo correction needs the knowledge base's vocabulary and lives in :mod:`index.lexical`.
"""

from __future__ import annotations

import re

MAX_QUERY_CHARS = 2000  # longer messages are truncated before embedding (the model sees 256 tokens anyway)

# Abbreviations and jargon as students type them -> the words the questionnaires use.
GLOSSARY: dict[str, str] = {
    "lr": "learning rate",
    "lrs": "learning rates",
    "bn": "batch normalization",
    "batchnorm": "batch normalization",
    "sgd": "stochastic gradient descent SGD",
    "knn": "k-nearest neighbor kNN",
    "k-nn": "k-nearest neighbor kNN",
    "nn": "neural network",
    "nns": "neural networks",
    "cnn": "convolutional neural network CNN",
    "cnns": "convolutional neural networks",
    "convnet": "convolutional neural network",
    "convnets": "convolutional neural networks",
    "conv": "convolution",
    "convs": "convolutions",
    "fc": "fully connected",
    "mlp": "multi-layer neural network",
    "dls": "DataLoaders",
    "dl": "DataLoader",
    "lr_find": "learning rate finder",
    "lr_finder": "learning rate finder",
    "bs": "batch size",
    "params": "parameters",
    "init": "initialization",
    "initialisation": "initialization",
    "initialise": "initialize",
    "grad": "gradient",
    "grads": "gradients",
    "reg": "regularization",
    "regularisation": "regularization",
    "normalisation": "normalization",
    "val": "validation",
    "acc": "accuracy",
    "imgs": "images",
    "img": "image",
    "bias/variance": "bias variance",
    "one-cycle": "1cycle",
    "onecycle": "1cycle",
    "fp16": "half-precision fp16",
    "nchw": "NCHW",
    "relu": "ReLU",
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
        return GLOSSARY.get(word.lower(), word)

    # Whole words only, and never inside dotted code such as nn.ReLU or F.relu.
    return re.sub(r"(?<![\w/.-])[A-Za-z][\w'/-]*(?!\.\w)", replace, text)


def normalize_query(text: str, keep_context: bool = True, glossary: bool = True) -> str:
    """clean_message, then (optionally) expand_abbreviations: what the retriever embeds and searches."""
    cleaned = clean_message(text, keep_context)
    return expand_abbreviations(cleaned) if glossary else cleaned
