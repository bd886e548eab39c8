"""Rates as users write them in wrangler.toml."""
import pytest

from src.tollgate.rates import Rate, parse_rate


@pytest.mark.parametrize("text, rate", [
    ("100/minute", Rate(100, 60_000)),
    ("10/second", Rate(10, 1_000)),
    ("5000/day", Rate(5000, 86_400_000)),
    ("3/hour", Rate(3, 3_600_000)),
    ("20 per 10 seconds", Rate(20, 10_000)),
    ("20 per 10 SECONDS", Rate(20, 10_000)),
    (" 7 / minute ", Rate(7, 60_000)),
    ("1 per 2 days", Rate(1, 172_800_000)),
])
def test_accepted_spellings(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["100/minnute", "100", "/minute", "1.5/second", "-1/second", "ten/second",
                                  "100 per", "100 minute", ""])
def test_a_typo_says_what_was_expected(text):
    with pytest.raises(ValueError) as err:
        parse_rate(text)
    assert 'expected N/second|minute|hour|day or "N per K seconds"' in str(err.value)
    assert f'"{text}"' in str(err.value)


def test_zero_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="at least 1"):
        parse_rate("0/minute")
    with pytest.raises(ValueError, match="at least 1"):
        parse_rate("5 per 0 seconds")


def test_not_a_string():
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(100)


def test_str_round_trips():
    for text in ("100/minute", "10/second", "5000/day", "3/hour", "20 per 10 seconds"):
        assert str(parse_rate(text)) == text
        assert parse_rate(str(parse_rate(text))) == parse_rate(text)


@pytest.mark.parametrize("text, suggestion", [("100/minnute", "100/minute"), ("5/dya", "5/day"),
                                              ("20 per 10 secnds", "20 per 10 seconds")])
def test_a_misspelt_unit_gets_a_did_you_mean(text, suggestion):
    with pytest.raises(ValueError, match=f'did you mean "{suggestion}"'):
        parse_rate(text)
