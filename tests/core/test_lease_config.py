"""`mode` and `max_overshoot` in the config: lease rules parsed, and every rule whose bound
cannot be met refused with the field and the reason, in the rule and in its overrides."""
import pytest

from src.tollgate.config import ConfigError, parse_config
from src.tollgate.lease_config import parse_max_overshoot


def errors(rule: dict, **extra) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config({"rules": [rule], **extra})
    return str(exc.value)


def test_a_lease_rule_carries_its_bound_and_strict_is_the_default():
    config = parse_config({"rules": [{"name": "m", "limit": "60000/minute", "mode": "lease"},
                                     {"name": "h", "limit": "1000/hour", "mode": "lease", "max_overshoot": "0.5%"},
                                     {"name": "s", "limit": "20/second", "burst": 40}]})
    assert [r.lease for r in config.rules] == [0.01, 0.005, 0.0]


def test_rules_whose_bound_cannot_be_met_are_refused():
    assert "rules[0].mode" in errors({"name": "s", "limit": "20/second", "mode": "lease"})      # 10 ms leases
    assert "fixed_window" in errors({"name": "d", "limit": "5/day", "algorithm": "fixed_window", "mode": "lease"})
    assert "shadow" in errors({"name": "m", "limit": "60/minute", "mode": "lease", "shadow": True})
    assert "max_overshoot" in errors({"name": "m", "limit": "60/minute", "max_overshoot": "1%"})
    assert '"1%"' in errors({"name": "m", "limit": "60/minute", "mode": "lease", "max_overshoot": 0.01})
    assert "leased" in errors({"name": "m", "limit": "60/minute", "mode": "leased"})
    assert "at most 50%" in errors({"name": "m", "limit": "60/minute", "mode": "lease", "max_overshoot": "80%"})


def test_an_override_that_makes_a_lease_rule_unleasable_is_refused():
    text = errors({"name": "m", "limit": "600/minute", "mode": "lease"}, overrides={"key:abc": {"m": "10/second"}})
    assert 'overrides."key:abc".m' in text and "lease" in text


def test_max_overshoot_reads_percentages_only():
    assert parse_max_overshoot("1%") == 0.01 and parse_max_overshoot(" 2.5 % ") == 0.025
    with pytest.raises(ValueError):
        parse_max_overshoot("1")


def test_a_concurrency_rule_is_always_strict():
    assert "always decided by the bucket" in errors({"name": "c", "limit": "5 concurrent", "mode": "lease"})
    assert "max_overshoot" in errors({"name": "c", "limit": "5 concurrent", "max_overshoot": "1%"})
    assert parse_config({"rules": [{"name": "c", "limit": "5 concurrent", "mode": "strict"}]}).rules[0].lease == 0.0
