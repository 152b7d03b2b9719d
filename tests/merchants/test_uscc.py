"""The unified social credit code check (GB 32100-2015), against worked examples."""

from __future__ import annotations

import pytest

from app.merchants.uscc import ALPHABET, check_character, is_valid, normalize

# An N-prefixed village-collective code (N = agriculture, 2 = village collective, Batang 513335),
# its check character worked out by hand below.
VILLAGE_COLLECTIVE = "N2513335MA62D12348"


def _by_hand(first17: str) -> str:
    """The standard's recipe, written out independently of the module under test."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(alphabet.index(ch) * w for ch, w in zip(first17, weights, strict=True))
    return alphabet[(31 - total % 31) % 31]


def test_worked_example() -> None:
    # Σ = 1640, 1640 mod 31 = 28, 31 − 28 = 3 → '3'
    assert check_character("91350100M000100Y4") == "3"
    assert is_valid("91350100M000100Y43")


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000600037341L", "91110108551385082Q"])
def test_valid_examples(code: str) -> None:
    assert is_valid(code)


def test_wrong_check_character() -> None:
    assert not is_valid("91350100M000100Y4Z")
    assert not is_valid("91350100M000100Y44")


def test_village_collective_n_prefix_is_valid() -> None:
    assert _by_hand(VILLAGE_COLLECTIVE[:17]) == VILLAGE_COLLECTIVE[17]
    assert is_valid(VILLAGE_COLLECTIVE)
    assert is_valid("N25133350000000017")


def test_alphabet_has_no_i_o_s_v_z() -> None:
    assert len(ALPHABET) == 31
    assert not set("IOSVZ") & set(ALPHABET)


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_codes_with_excluded_letters_are_invalid(letter: str) -> None:
    # Put the letter in the organisation-code part and give the code every possible last
    # character: none makes it valid.
    body = "91350100M000100" + letter + "4"
    assert all(not is_valid(body + ch) for ch in ALPHABET + "IOSVZ")


@pytest.mark.parametrize(
    "code", ["", "91350100M000100Y4", "91350100M000100Y433", "9135", "91350100M000100Y43" * 2]
)
def test_wrong_length_is_invalid(code: str) -> None:
    assert not is_valid(code)


def test_division_code_must_be_digits() -> None:
    body = "9135A100M000100Y4"
    assert not is_valid(body + check_character(body))


def test_lower_case_is_invalid_until_normalised() -> None:
    assert not is_valid("91110000600037341l")
    assert normalize("  91110000600037341l \n") == "91110000600037341L"
    assert is_valid(normalize(" n2513335ma62d12348 "))


def test_agrees_with_the_hand_recipe() -> None:
    for first17 in ["91350100M000100Y4", "91110000600037341", "N2513335MA62D1234", "1" * 17]:
        assert check_character(first17) == _by_hand(first17)
