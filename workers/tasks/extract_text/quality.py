"""Does extracted text look like garbage? A cheap test per page (PDF) or per document, for a warning.

Garbage comes from fonts without a proper Unicode map (PDF glyph soup: private-use code points,
glyph names such as ``/uni0041`` or ``(cid:12)``, letters of a cipher), from bytes decoded in the
wrong encoding (mojibake such as ``CafÃ©``) and from symbol fonts read as text. Each test looks at
shares of characters or words, so a few odd ones in real text do not count.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

SAMPLE_CHARS = 60_000  # characters looked at, at most (spread over the text)
_MIN_CHARS = 40  # shorter texts are never called garbage: too little to tell
_BAD_SHARE = 0.10  # replacement, private-use, control or unassigned characters among the non-space ones
_SYMBOL_SHARE = 0.35  # symbols (Unicode S*) among the non-space characters
_MOJIBAKE_SHARE = 0.02  # UTF-8 read as cp1252/latin-1: such pairs per word
_GLYPH_NAME_SHARE = 0.05  # glyph names per word
_MIXED_SHARE = 0.15  # words mixing letters of two alphabets
_MIN_LATIN = 300  # Latin letters needed before their vowels are counted
_VOWEL_SHARE = 0.20  # real Latin-script text has 27-45 % vowels (Czech, maths lowest); glyph ids about 18 %

_GLYPH_NAME = re.compile(r"\(cid:\d+\)|/(?:uni[0-9A-Fa-f]{4,6}|g\d{1,5}|glyph\d+|[Gg]\d{2,5}|index\d+)\b")
_MOJIBAKE = re.compile(r"[ÃÂ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u2013-\u2026\u20ac\u2122]|â€")
_LATIN = frozenset("abcdefghijklmnopqrstuvwxyzßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿœšžłńśźżčďěňřťůőű")
_VOWELS = frozenset("aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœąęėįųůőűıāēīōū")
_ALPHABETS = ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "ARMENIAN", "GEORGIAN", "THAI", "DEVANAGARI")


def garbage_reason(text: str) -> str | None:
    """Why ``text`` looks like garbage, in a few words, or None when it looks like text."""
    sample = _sample(text)
    words = sample.split()
    chars = sum(len(word) for word in words)
    if chars < _MIN_CHARS:
        return None
    if len(_GLYPH_NAME.findall(sample)) > _GLYPH_NAME_SHARE * len(words):
        return "glyph names instead of letters"
    counts = Counter(sample)  # each distinct character is classified once
    if sum(n for char, n in counts.items() if _is_bad(char)) > _BAD_SHARE * chars:
        return "unreadable characters (private-use, replacement or control characters)"
    if len(_MOJIBAKE.findall(sample)) > _MOJIBAKE_SHARE * len(words):
        return "mojibake (UTF-8 text decoded in a legacy encoding)"
    if sum(n for char, n in counts.items() if _is_symbol(char)) > _SYMBOL_SHARE * chars:
        return "mostly symbols instead of letters"
    if _mixed_words(words, counts) > _MIXED_SHARE * len(words) and len(words) >= 20:
        return "letters of different alphabets mixed within words"
    latin = sum(n for char, n in counts.items() if char.lower() in _LATIN)
    vowels = sum(n for char, n in counts.items() if char.lower() in _VOWELS)
    if latin >= _MIN_LATIN and vowels < _VOWEL_SHARE * latin:
        return "scrambled letters (a font without a Unicode map)"
    return None


def _is_bad(char: str) -> bool:
    """A replacement, private-use, unassigned, surrogate or control character (not a space)."""
    if char.isspace():
        return False
    return char == "\ufffd" or unicodedata.category(char) in ("Co", "Cn", "Cs", "Cc")


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] == "S"


def _mixed_words(words: list[str], counts: Counter[str]) -> int:
    """Words whose letters come from more than one alphabet (Latin and Cyrillic, ...)."""
    script = {char: _script(char) for char in counts if not char.isascii() and char.isalpha()}
    mixed = 0
    for word in words:
        if not word.isascii():
            found = {"LATIN" if char.isascii() else script.get(char, "") for char in word if char.isalpha()}
            found.discard("")
            mixed += len(found) > 1
    return mixed


def _script(char: str) -> str:
    """The alphabet of a letter, among _ALPHABETS, or "" (CJK, other scripts and signs mix freely)."""
    name = unicodedata.name(char, "").split(" ", 1)[0]
    return name if name in _ALPHABETS else ""


def _sample(text: str) -> str:
    """The whole text when short, else three slices (start, middle, end) of SAMPLE_CHARS in all."""
    if len(text) <= SAMPLE_CHARS:
        return text
    third = SAMPLE_CHARS // 3
    middle = len(text) // 2 - third // 2
    return "\n".join((text[:third], text[middle:middle + third], text[-third:]))
