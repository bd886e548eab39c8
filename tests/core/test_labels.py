"""An override's optional `label` (src/tollgate/labels.py), parsed by the config: the dashboard
shows clients by hash prefix and label, never by the raw API key an override is keyed by."""
from __future__ import annotations

import pytest

from src.tollgate.config import ConfigError


def test_an_override_may_carry_a_label_for_the_dashboard_never_the_key():
    from src.tollgate.config import parse_config as parse
    base = {"rules": [{"name": "burst", "limit": "10/second"}]}
    cfg = parse({**base, "overrides": {"key:sk_live_abc": {"label": "Acme Corp", "burst": "100/second"},
                                       "ip:192.0.2.7": {"label": "office"}}})
    assert cfg.labels == {"key:sk_live_abc": "Acme Corp", "ip:192.0.2.7": "office"}
    assert cfg.overrides["key:sk_live_abc"][0][0].limit.count == 100      # the label is not a rule
    assert parse(base).labels == {}
    with pytest.raises(ConfigError) as err:
        parse({**base, "overrides": {"key:sk_live_abc": {"label": "sk_live_abc (Acme)"}, "key:b": {"label": ""},
                                     "key:c": {"label": 7}, "key:d": {"label": "x" * 65}}})
    text = "\n".join(err.value.errors)
    assert 'overrides."key:sk_live_abc".label: the label must not contain the API key' in text
    assert text.count("expected a label of 1-64 printable characters") == 3
    assert "sk_live_abc (Acme)" not in text                                 # the error does not repeat the key
    with pytest.raises(ConfigError, match=r'plans\."gold".label: no rule is named'):
        parse({**base, "plans": {"gold": {"label": "Gold"}}})                # labels name clients, not plans
