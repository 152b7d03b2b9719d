"""The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters, the last a
check character over the first 17. N-prefixed codes (agriculture: village collectives) are valid."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


def check_character(first17: str) -> str:
    """The check character for the first 17 characters (which must be in the alphabet)."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalize(code: str) -> str:
    return code.strip().upper()


def is_valid(code: str) -> bool:
    """True for an 18-character code in the alphabet, positions 3–8 digits, check char right."""
    if len(code) != 18 or any(ch not in _VALUE for ch in code):
        return False
    if not code[2:8].isdigit():
        return False
    return check_character(code[:17]) == code[17]
