"""Plain-text helpers of the offline provider: key terms, sentences, headings."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence

# Runs of content words that recur this often are phrases ("gradient descent"); rarer pairs are
# mostly a noun and its verb ("erosion cuts"), which make poor answers.
PHRASE_REPEATS = 3
# A term the lesson's slides also show counts this much extra: the speaker chose to write it.
SLIDE_BOOST = 2

_STOPWORD_TEXT = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each else even ever
    every few for from further get gets got had has have having he her here hers him his how i if
    in into is it its itself just let like made make makes many may me might more most much must
    my no nor not now of off on once one only or other our ours out over own per quite rather
    really same see she should since so some such than that the their theirs them then there
    these they thing things this those though through thus to too two under until up upon us
    very was way we well were what when where whether which while who whom whose why will with
    within without would yet you your yours okay right going gonna want called call use used
    using lot lots kind sort today something anything everything let's we're it's that's
    there's"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")
_CLAUSE_BREAK = re.compile(r"[^\w\s'-]+|\s-\s|\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def mentions(text: str, term: str) -> bool:
    """Whether ``term`` occurs in ``text`` as whole words, ignoring case."""
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


def term_counts(text: str) -> Counter[str]:
    """Content words, and two-word phrases said at least PHRASE_REPEATS times."""
    words: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for clause in _CLAUSE_BREAK.split(text.lower()):
        run: list[str] = []
        for word in [*WORD.findall(clause), ""]:  # "" flushes the last run
            if len(word) >= 3 and word not in STOPWORDS:
                run.append(word)
                continue
            words.update(run)
            pairs.update(f"{a} {b}" for a, b in itertools.pairwise(run))
            run = []
    # Counter keeps first-seen order, which the stable sorts below use to break ties.
    return words + Counter({pair: 2 * n for pair, n in pairs.items() if n >= PHRASE_REPEATS})


def ranked_terms(
    texts: Sequence[str], limit: int | None = None, *, shown: Sequence[str] = ()
) -> list[list[str]]:
    """Key terms of each text: those no other text mentions first, then by frequency (plus
    SLIDE_BOOST when the matching ``shown`` text has them), then by first appearance."""
    ranked = []
    for i, text in enumerate(texts):
        counts = term_counts(text)
        others = [other for j, other in enumerate(texts) if j != i]
        slide = shown[i] if i < len(shown) else ""
        keys = {
            term: (
                sum(mentions(other, term) for other in others),
                -count - (SLIDE_BOOST if slide and mentions(slide, term) else 0),
            )
            for term, count in counts.items()
        }
        ranked.append(sorted(counts, key=keys.__getitem__)[:limit])
    return ranked


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def tidy(sentence: str) -> str:
    """A sentence as prose: capital first letter, a closing full stop (Whisper may omit both)."""
    sentence = " ".join(sentence.split())
    if not sentence:
        return ""
    sentence = sentence[0].upper() + sentence[1:]
    return sentence if sentence[-1] in ".!?" else sentence + "."


def opening(texts: Sequence[str], count: int = 2) -> str:
    """The first ``count`` sentences of segment texts; an unpunctuated segment is one sentence."""
    found = [tidy(s) for text in texts for s in sentences(text)]
    return " ".join(found[:count])


def heading(text: str, words: int = 3) -> str:
    """The first few content words, title-cased: what a speaker announces first."""
    content = [w for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) >= 3]
    return " ".join(word.capitalize() for word in content[:words])
