"""The offline quiz: questions on a lesson's ideas, answers the lesson states, distractors of
the answer's own kind, never two questions on one sentence.

A question comes from one sentence (or one slide line) of the lesson, as the first rule that
fits it says: a definition ("X is a ..."), a cause ("... because ..."), a comparison ("... faster
than ..."), a slide's bullet, a statement about one of the lesson's key terms ("public key
encryption uses a pair of keys"); then clozes on key terms. Distractors are answers of the same
kind taken from the other lessons (a definition against definitions, a number against numbers,
a two-word term against two-word terms), nearest lessons first, and never words this lesson
says, so exactly one choice is right.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from handlers.ai.port import LessonText
from handlers.ai.text import STOPWORDS, mentions, ranked_terms, sentences, tidy

DISTRACTORS = 3
LESSON_TERMS = 6
BLANK = "_____"
CLOZE_WINDOW_WORDS = 10
# An answer of more words gives itself away; fewer says too little.
CLAUSE_WORDS = (2, 12)
# Clause kinds in the order a lesson's questions are asked.
KINDS = ("definition", "cause", "comparison", "bullet", "statement")
# Distractors for a course with too few other lessons; each is dropped if the lesson says it.
GENERIC_TERMS = (
    "photosynthesis", "parliament", "magnetism", "algorithm", "inflation", "telescope",
    "sonnet", "enzyme", "calculus", "pyramid", "volcano", "grammar",
)  # fmt: skip
_NUMBER_TEXT = """zero one two three four five six seven eight nine ten eleven twelve twenty
    thirty forty fifty hundred thousand million billion half quarter"""
NUMBER_WORDS = frozenset(_NUMBER_TEXT.split())
_DEFINITION = re.compile(
    r"^(?:.*?\bthat\s+)?(?P<subject>[\w' -]{3,50}?)\s+(?P<verb>is|are|means|refers to)\s+"
    r"(?P<rest>(?:a|an|the|any|one|when|how)\s.+)$",
    re.IGNORECASE,
)
_CAUSE = re.compile(r"^(?P<head>.{8,}?),?\s+(?:because|since|due to)\s+(?P<rest>.+)$", re.I)
_COMPARISON = re.compile(
    r"^(?P<head>.{3,}?\b(?:more|less|better|worse|[a-z]{3,}er)(?:\s+[a-z]+)?)\s+than\s+"
    r"(?P<rest>.+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Fact:
    """One askable idea: the kind of answer, the question, the answer, where it was said."""

    kind: str
    prompt: str
    answer: str
    source: str  # the sentence or slide line; no second question may come from it


def quizzes(lessons: Sequence[LessonText], per_lesson: int) -> dict[str, Any]:
    """Per lesson at least ``per_lesson`` (and two) questions, each answer stated in it."""
    materials = [material(lesson) for lesson in lessons]
    said = [
        [t for t in ranked if mentions(text, t)]
        for ranked, text in zip(ranked_terms(materials, LESSON_TERMS), materials, strict=True)
    ]
    # The best term, then the numbers said (a year, a quantity), then the other terms.
    terms = [t[:1] + _numbers(text) + t[1:] for t, text in zip(said, materials, strict=True)]
    template = _template_lines(lessons)
    facts = [lesson_facts(lesson, terms[i], template) for i, lesson in enumerate(lessons)]
    out = []
    for i, lesson in enumerate(lessons):
        others = sorted((j for j in range(len(lessons)) if j != i), key=lambda j: abs(j - i))
        rng = random.Random(f"coursegen-quiz:{lesson.index}")
        questions = _questions(lesson, i, materials[i], facts, terms, others, per_lesson, rng)
        out.append({"lesson": lesson.index, "questions": questions})
    return {"lessons": out}


def material(lesson: LessonText) -> str:
    """What the lesson's questions may be about; a lesson that says no word (silence, or OCR
    crumbs such as "4.") falls back to its title, as an empty one does."""
    text = f"{lesson.transcript}\n{lesson.slide_text}".strip()
    if not re.search(r"[^\W\d_]{3,}", text):
        text = ""
    return text or lesson.title or f"Lesson {lesson.index + 1}"


def _numbers(text: str) -> list[str]:
    """The numbers the lesson says (years, quantities), once each: cloze answers."""
    found = re.findall(r"(?<![\w.])\d+(?:[.,]\d+)?%?(?![\w.]\w)", text)
    return list(dict.fromkeys(found))[:LESSON_TERMS]


def _template_lines(lessons: Sequence[LessonText]) -> set[str]:
    """Slide lines that more than one lesson shows (a footer, a header: the deck's template,
    page numbers aside): no lesson's idea."""
    seen: dict[str, set[int]] = {}
    for lesson in lessons:
        for line in _slide_lines(lesson):
            seen.setdefault(_letters(line), set()).add(lesson.index)
    return {key for key, where in seen.items() if len(where) > 1}


def _letters(line: str) -> str:
    return " ".join(re.findall(r"[^\W\d_]+", line.lower()))


def lesson_facts(
    lesson: LessonText, terms: Sequence[str], template: Set[str] = frozenset()
) -> list[Fact]:
    """Every askable idea of the lesson, at most one per sentence or slide line, the kinds
    taken in turn (a definition, a cause, ..., then the next definition)."""
    title = lesson.title
    found = []
    for line in _slide_lines(lesson):
        if _letters(line) in template:
            continue
        if _fits(line) and line.lower() != title.lower():
            prompt = f'Which of these is a point on the slide "{title}"?'
            found.append(Fact("bullet", prompt, line, line))
    for sentence in sentences(lesson.transcript):
        fact = _clause_fact(sentence.rstrip(".!?"), title, terms)
        if fact is not None:
            found.append(fact)
    turns = {kind: [f for f in found if f.kind == kind] for kind in KINDS}
    rounds = max((len(group) for group in turns.values()), default=0)
    return [group[n] for n in range(rounds) for group in turns.values() if n < len(group)]


def _slide_lines(lesson: LessonText) -> list[str]:
    lines = [" ".join(line.split()).rstrip(".") for line in lesson.slide_text.splitlines()]
    return list(dict.fromkeys(line for line in lines if line))


def _clause_fact(sentence: str, title: str, terms: Sequence[str]) -> Fact | None:
    where = f'the lesson "{title}"'
    if (m := _DEFINITION.match(sentence)) and _fits(m["rest"]):
        subject = m["subject"].strip()
        subject = subject[0].lower() + subject[1:]
        return Fact("definition", f"According to {where}, what {m['verb']} {subject}?",
                    m["rest"], sentence)  # fmt: skip
    if (m := _CAUSE.match(sentence)) and _fits(m["rest"]):
        head = m["head"][0].lower() + m["head"][1:]
        return Fact("cause", f"According to {where}, why is it that {head}?", m["rest"], sentence)
    if (m := _COMPARISON.match(sentence)) and _fits(m["rest"]):
        return Fact("comparison", f'Complete the comparison from {where}: "{m["head"]} than …"',
                    m["rest"], sentence)  # fmt: skip
    for term in sorted(terms, key=lambda t: -len(t.split())):
        found = re.search(rf"(?<!\w){re.escape(term)}\s+(?P<rest>[a-z][\w' -]*)$", sentence, re.I)
        if found and _fits(found["rest"]) and _verb(found["rest"].split()[0]):
            head = sentence[: found.start("rest")].split()[-4:]
            while head and head[0].lower() in STOPWORDS:
                head = head[1:]
            subject = tidy(" ".join(head) or term)[:-1]
            prompt = f'Complete the statement from {where}: "{subject} …"'
            return Fact("statement", prompt, found["rest"], sentence)
    return None


def _verb(word: str) -> bool:
    """Whether a word after a term reads as its verb ("uses", "landed"): what a statement
    about the term needs; "function" after "hash" is the term going on, not a claim."""
    word = word.lower()
    if word in STOPWORDS or len(word) < 4:
        return False
    return word.endswith("ed") or (word.endswith("s") and not word.endswith(("ss", "us")))


def unit_key(text: str) -> str:
    """A sentence, slide line or answer as compared for "asked already": case, spacing and
    closing punctuation aside."""
    return " ".join(text.lower().split()).strip(".!?…")


def _fits(clause: str) -> bool:
    words = clause.split()
    return CLAUSE_WORDS[0] <= len(words) <= CLAUSE_WORDS[1] and bool(re.search(r"[a-z]{3}", clause))


def _questions(
    lesson: LessonText,
    i: int,
    text: str,
    facts: Sequence[Sequence[Fact]],
    terms: Sequence[Sequence[str]],
    others: Sequence[int],
    count: int,
    rng: random.Random,
) -> list[dict[str, Any]]:
    count = max(2, count)
    used: set[str] = set()  # the sentences asked about, and the answers given
    questions: list[dict[str, Any]] = []
    for fact in facts[i]:
        if len(questions) >= count:
            break
        keys = {unit_key(fact.source), unit_key(fact.answer)}
        if keys & used or not mentions(text, fact.answer):
            continue
        pool = _clause_pool(fact, facts, others)
        choices = _choices(fact.answer, pool, text, rng)
        if len(choices) < 2:
            continue
        used |= keys
        questions.append(_question("multiple_choice", fact.prompt, choices, fact.answer,
                                   f'The lesson says: "{tidy(fact.source)}"'))  # fmt: skip
    lines = [*sentences(lesson.transcript), *_slide_lines(lesson)]
    for term in terms[i]:
        if len(questions) >= count:
            break
        pool = _term_pool(term, terms, others)
        question = _cloze(term, lines, used, _choices(term, pool, text, rng))
        if question is not None:
            questions.append(question)
    missing = count - len(questions)
    return questions + _fallback(lesson, text, terms, i, others, missing, used, rng)


def _fallback(
    lesson: LessonText,
    text: str,
    terms: Sequence[Sequence[str]],
    i: int,
    others: Sequence[int],
    missing: int,
    used: set[str],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Too few ideas or sentences: which term comes up in the lesson (terms not asked about
    yet first; the title when the lesson says no word)."""
    fresh = [t for t in terms[i] if unit_key(t) not in used]
    answers = [*fresh, *(t for t in terms[i] if t not in fresh)]
    answers = answers or [lesson.title or f"Lesson {lesson.index + 1}"]
    out = []
    for n in range(max(0, missing)):
        answer = answers[n % len(answers)]
        pool = _term_pool(answer, terms, others)[n:]
        prompt = f'Which of these comes up in the lesson "{lesson.title}"?'
        if n >= len(answers):
            prompt = f'Which of these does the lesson "{lesson.title}" name?'
        choices = _choices(answer, pool, text, rng)
        why = f'"{answer}" is part of this lesson; the other choices are not.'
        out.append(_question("multiple_choice", prompt, choices, answer, why))
    return out


def answer_kind(answer: str) -> tuple[str, int]:
    """What an answer is, for distractors of the same kind: a number, or a term of so many
    words with its ending class (-ing, -ly, -ed, a plural, else a plain word)."""
    words = answer.lower().split()
    if all(re.fullmatch(r"[\d.,%]+", w) or w in NUMBER_WORDS for w in words):
        return ("number", 0)
    last = words[-1] if words else ""
    ending = next((e for e in ("ing", "ly", "ed") if last.endswith(e) and len(last) > 4), "")
    if not ending and last.endswith("s") and not last.endswith("ss") and len(last) > 3:
        ending = "s"
    return (f"term{ending}", min(len(words), 3))


def _clause_pool(fact: Fact, facts: Sequence[Sequence[Fact]], others: Sequence[int]) -> list[str]:
    """Other lessons' answers of the fact's kind, nearest in length first; only when they have
    none, their answers of the other clause kinds (a statement is still set against
    statements, never against a bare term)."""
    same = [f.answer for j in others for f in facts[j] if f.kind == fact.kind]
    pool = same or [f.answer for j in others for f in facts[j]]
    length = len(fact.answer.split())
    return sorted(pool, key=lambda a: abs(len(a.split()) - length))


def _term_pool(term: str, terms: Sequence[Sequence[str]], others: Sequence[int]) -> list[str]:
    """Other lessons' terms of the term's kind (nearest lessons first), then generic words
    when the term is a plain word."""
    kind = answer_kind(term)
    pool = [t for k in range(2 * LESSON_TERMS) for j in others if k < len(terms[j])
            for t in [terms[j][k]] if answer_kind(t) == kind]  # fmt: skip
    if kind == ("term", 1):
        pool += GENERIC_TERMS
    return pool


def _choices(answer: str, pool: Iterable[str], text: str, rng: random.Random) -> list[str]:
    """The answer and up to DISTRACTORS others from the start of the pool, shuffled: none the
    lesson says, none inside the answer or holding it, no two alike."""
    key = answer.lower()
    fitting: list[str] = []
    for choice in pool:
        low = choice.lower()
        # Not even inside a word of the lesson ("rock" when it says "rocks"): no doubt left.
        if low in key or key in low or low in text.lower():
            continue
        if low not in (c.lower() for c in fitting):
            fitting.append(choice)
    picked = rng.sample(fitting[: 2 * DISTRACTORS], min(DISTRACTORS, len(fitting)))
    choices = [answer, *picked]
    rng.shuffle(choices)
    return choices


def _question(
    kind: str, prompt: str, choices: Sequence[str], answer: str, explanation: str
) -> dict[str, Any]:
    return {"kind": kind, "prompt": prompt, "choices": list(choices), "answer": answer,
            "explanation": explanation}  # fmt: skip


def _cloze(
    term: str, lines: Sequence[str], used: set[str], choices: Sequence[str]
) -> dict[str, Any] | None:
    """Blank out ``term`` in a sentence no question used yet."""
    if len(choices) < 2:
        return None
    if unit_key(term) in used:
        return None
    for line in lines:
        if unit_key(line) in used or not mentions(line, term):
            continue
        used |= {unit_key(line), unit_key(term)}
        context = _window(line, term)
        pattern = rf"(?<!\w){re.escape(term)}(?!\w)"
        prompt = "Fill in the blank: " + re.sub(pattern, BLANK, context, flags=re.I)
        return _question("cloze", prompt, choices, term, f'The lesson says: "{context}"')
    return None


def _window(line: str, term: str) -> str:
    """The sentence, or for unpunctuated speech the words around the term, so a blank fits."""
    words = CLOZE_WINDOW_WORDS
    found = re.search(
        rf"(?:\S+\s+){{0,{words}}}(?<!\w){re.escape(term)}(?!\w)(?:\s+\S+){{0,{words}}}",
        line,
        re.IGNORECASE,
    )
    assert found is not None  # the caller checked that the line mentions the term
    context = tidy(found.group(0))
    if found.start() > 0:
        context = "…" + found.group(0)[0] + context[1:]  # mid-sentence: keep the lower case
    return context if found.end() == len(line) else context.rstrip(".") + "…"


def by_lesson(quiz: Mapping[str, Any]) -> dict[int, list[Mapping[str, Any]]]:
    """The questions of each lesson index."""
    return {int(entry["lesson"]): list(entry["questions"]) for entry in quiz["lessons"]}
