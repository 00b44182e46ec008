"""quality.garbage_reason: garbage as extractors really produce it is named; real text in many
languages and shapes (tables, code, tables of contents, science) is not."""

from __future__ import annotations

import pytest

from workers.tasks.extract_text.quality import SAMPLE_CHARS, garbage_reason

SENTENCE = "The quick brown fox jumps over the lazy dog while the farmer counts his apples. "
FRENCH = "Le café crème et la crème brûlée de l'été sont prêts ; les invités naïfs en redemandent. "


def _gid_offset(text: str, offset: int = 29) -> str:
    """Text as a subset font without a Unicode map extracts: each code is the glyph id, which is the
    character's code minus 29 in a typical TrueType subset (so 'The' comes out as '7KH')."""
    return "".join(chr(ord(c) - offset) if c.isalpha() else c for c in text)


GARBAGE = {
    "mojibake": ((FRENCH * 4).encode("utf-8").decode("cp1252"), "mojibake (UTF-8 text decoded in a legacy encoding)"),
    "private use": ("".join(chr(0xE000 + ord(c)) for c in SENTENCE * 2),
                    "unreadable characters (private-use, replacement or control characters)"),
    "replacement": ("Gr\ufffd\ufffde aus K\ufffdln \ufffd\ufffd\ufffd \ufffd\ufffd \ufffd\ufffd\ufffd " * 8,
                    "unreadable characters (private-use, replacement or control characters)"),
    "control codes": ("\x03\x04\x05\x06 \x07\x0e\x0f " * 20, "unreadable characters (private-use, replacement or "
                      "control characters)"),
    "cid": (" ".join(f"(cid:{n})" for n in range(3, 90)), "glyph names instead of letters"),
    "uni names": (" ".join(f"/uni{n:04X}/uni{n + 1:04X}" for n in range(0x41, 0x90)), "glyph names instead of letters"),
    "glyph ids": (_gid_offset(SENTENCE * 6), "scrambled letters (a font without a Unicode map)"),
    "symbols": ("™— › ™œ ›Ÿ˜ ¤¦§ ©®° ±´µ ¶·¸ ∑∏√ ∞≈≠ ≤≥÷ " * 5, "mostly symbols instead of letters"),
    "homoglyphs": ("Пpивeт миp, этo тeкcт c лaтинcкими буквaми внутpи cлoв, кaк в плoxиx шpифтax. " * 5,
                   "letters of different alphabets mixed within words"),
}

TEXT = {
    "english": SENTENCE * 10,
    "french": FRENCH * 10,
    "german": "Grüße aus Köln: Straße, Äpfel und übermäßig schöne Öfen für 5 €. " * 10,
    "czech": "Příliš žluťoučký kůň úpěl ďábelské ódy. Strč prst skrz krk. " * 10,
    "welsh": "Mae hwn yn brawf byr o destun Cymraeg gyda llawer o eiriau hir fel llwybr a cwm. " * 10,
    "russian": "Привет, мир! Это обычный русский текст без ошибок и лишних символов. " * 10,
    "greek": "Η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο. " * 10,
    "japanese": "わたくしといふ現象は仮定された有機交流電燈のひとつの青い照明です。" * 10,
    "science": "The film was 5 μm thick; after 3 μs the Ω-loop gave α = 0.5 ± 0.1 and β ≈ 0.2 (n = 12). " * 10,
    "table": "1,234.56 | 7,890.12 | 3,456.78 | 2024-03-01 | 12:00 | 99.9 % | 42 | 17\n" * 20,
    "code": "def total(rows):\n    return sum(r['amount'] for r in rows if r['amount'] > 0)  # pence\n" * 20,
    "contents": "Introduction . . . . . . . . . . . . 1\nMethods . . . . . . . . . . . . 5\n" * 20,
    "short garbage": "™— › ™œ",  # too little to judge
    "a few odd characters": SENTENCE * 8 + "\ue000\ufffd (cid:3) CafÃ©",
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_text_is_recognised_and_its_kind_named(name: str) -> None:
    text, reason = GARBAGE[name]
    assert garbage_reason(text) == reason


@pytest.mark.parametrize("name", sorted(TEXT))
def test_text_is_not_garbage(name: str) -> None:
    assert garbage_reason(TEXT[name]) is None


def test_long_text_is_sampled_start_middle_and_end() -> None:
    """Only SAMPLE_CHARS characters are looked at, but garbage at the start, middle or end is seen."""
    good = SENTENCE * (SAMPLE_CHARS // len(SENTENCE) * 3)
    bad = "".join(chr(0xE000 + ord(c)) for c in SENTENCE) * 400
    assert garbage_reason(good) is None
    for text in (bad + good, good[: len(good) // 2] + bad + good[len(good) // 2:], good + bad):
        assert garbage_reason(text) == "unreadable characters (private-use, replacement or control characters)"
