"""A slide title without the crumbs tesseract reads at its ends (an icon or the bar's edge
read as "fe]" or "|"), words with brackets inside the title kept."""

from __future__ import annotations

from handlers.media.ocr import _Line, _slide_text, _Word


def line(*tokens: str) -> _Line:
    words = tuple(_Word(key=(1, 1, 1), text=t, top=10, height=20, confidence=90.0) for t in tokens)
    return _Line(key=(1, 1, 1), words=words)


def test_crumbs_at_the_ends_of_a_title_go() -> None:
    text = _slide_text([line("fe]", "Our", "formalization", "of", "haplotyping.", "|")], [])
    assert text.title == "Our formalization of haplotyping."
    assert text.words == 4


def test_a_title_keeps_its_own_words_and_inner_brackets() -> None:
    kept = _slide_text([line("Arrays", "[a]", "and", "lists")], [line("fe]", "body", "stays")])
    assert kept.title == "Arrays [a] and lists"
    assert kept.body == ("fe] body stays",)
    assert _slide_text([line("Graph", "Traversal")], []).title == "Graph Traversal"
