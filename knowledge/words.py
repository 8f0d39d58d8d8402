"""The word tables the grader and the retriever share: stopwords, a light stemmer, the field's abbreviations,
British spellings and number words. One of each; a use that needs more says so where it uses the table:

* ``index.lexical.QUERY_FILLERS = STOPWORDS | {...}``: what a question can drop (asking words, greetings);
* ``knowledge.quiz.grading.ANSWER_FILLERS = STOPWORDS | {...}``: the words an answer can drop (hedges,
  "called", "refers").

``knowledge`` is the bottom layer, so ``index`` and the quiz both import this module. ``engine`` imports none
of the other packages and reads numbers its own way: it keeps its own number words (``engine.parse``).
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "BRITISH_SPELLINGS", "NUMBER_WORDS", "STOPWORDS", "light_stem"]

# Words that say nothing about the subject in a question and in an answer alike: articles, pronouns,
# auxiliaries, prepositions, conjunctions and the commonest determiners and adverbs, plus the vague verbs
# and nouns any explanation uses (get, use, thing, way). Only words both uses drop: "not", "before",
# "between" and "no" carry an answer's content, so only the query's list adds them.
STOPWORDS = frozenset(
    """a an the i me my you your he his her she it its we our they their them this that these those who whom
    what which when where why how
    is are was were be been being do does did have has had can could would should will
    about again at by down for from in into of off on out over to under up with as
    and or but if because so than then while once further
    all any both each every more most much only other own same some such
    also just really very well here there
    get gets got let like thing things use used using way""".split()
)


def light_stem(
    word: str, *, ise_to_ize: bool = False, keep_us_is_as: bool = False, ation: bool = False
) -> str:
    """Inflection only by default (a possessive, plurals, -ing, -ed, a final -e): "relus" ~ "relu", but
    "transformers" !~ "transformation" (Porter stemming is right for ranking but too generous to decide
    whether the notes ever use a word). The options add what grading an answer needs:

    * ``ise_to_ize``: British -ise, -ised, -ises, -ising, -isation(s) spelled with z first, so
      "normalising" ~ "normalizing";
    * ``keep_us_is_as``: no plural -s taken off -us, -is, -as ("bias", "basis", "radius" stay whole);
    * ``ation``: also -ation off a long word, so "normalization" ~ "normalize" ~ "normalising".

    ``index.lexical`` (whether the notes use a word) calls it plain, ``knowledge.quiz.grading`` (an answer's
    key terms) with all three options.
    """
    if word.endswith("'s"):
        word = word[:-2]
    if ise_to_ize:
        word = re.sub(r"is(e|ed|es|ing|ation|ations)$", r"iz\1", word)
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        word = word[:-2]
    elif (
        len(word) > 3
        and word.endswith("s")
        and not word.endswith(("ss", "us", "is", "as") if keep_us_is_as else "ss")
    ):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if ation and len(word) > 7 and word.endswith("ation"):
        word = word[:-5]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


# The field's shorthand as students type it -> the words the notes use (their spelling and case: a use that
# compares lower-cased words lower-cases them). Shorthand only: an entry never spells out what a term means
# (that would be answering, not reading, a question). The retriever also keeps the short forms the notes
# themselves write ("SGD", "CNN"; ``index.text``); the grader splits the words as it splits an answer's
# ("k-nearest" is "k" and "nearest").
ABBREVIATIONS: dict[str, str] = {
    "lr": "learning rate",
    "lrs": "learning rates",
    "lr_find": "learning rate finder",
    "lr_finder": "learning rate finder",
    "bn": "batch normalization",
    "batchnorm": "batch normalization",
    "sgd": "stochastic gradient descent",
    "knn": "k-nearest neighbor",
    "k-nn": "k-nearest neighbor",
    "nn": "neural network",
    "nns": "neural networks",
    "mlp": "multi-layer neural network",
    "cnn": "convolutional neural network",
    "cnns": "convolutional neural networks",
    "convnet": "convolutional neural network",
    "convnets": "convolutional neural networks",
    "conv": "convolution",
    "convs": "convolutions",
    "fc": "fully connected",
    "ce": "cross entropy",
    "xent": "cross entropy",
    "crossentropy": "cross entropy",
    "nll": "negative log likelihood",
    "mse": "mean squared error",
    "std": "standard deviation",
    "dl": "DataLoader",
    "dls": "DataLoaders",
    "bs": "batch size",
    "param": "parameter",
    "params": "parameters",
    "init": "initialization",
    "grad": "gradient",
    "grads": "gradients",
    "reg": "regularization",
    "val": "validation",
    "acc": "accuracy",
    "img": "image",
    "imgs": "images",
    "fp16": "half-precision",
}

# British spellings of the notes' (American) words.
BRITISH_SPELLINGS: dict[str, str] = {
    "colour": "color",
    "neighbour": "neighbor",
    "initialisation": "initialization",
    "initialise": "initialize",
    "normalisation": "normalization",
    "regularisation": "regularization",
}

# Number words as digits, for comparing an answer's numbers ("two" is "2"). engine.parse keeps its own
# (engine imports none of the other packages): it reads a request's parameters and also knows "a couple of",
# "twice", "thirty" and "fifty".
NUMBER_WORDS: dict[str, str] = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
        " sixteen seventeen eighteen nineteen twenty".split()
    )
}
