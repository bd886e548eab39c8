"""The operator's tokens: who counts as an operator, and what a scrape accepts."""
from types import SimpleNamespace

from worker import operator_tokens


def test_admin_or_metrics_token_makes_an_operator_and_nothing_else_does():
    env = SimpleNamespace(ADMIN_TOKEN="adm", METRICS_TOKEN="met")
    assert operator_tokens.is_operator(env, "Bearer adm") and operator_tokens.is_operator(env, "bearer met ")
    assert not operator_tokens.is_operator(env, "Bearer nope")
    assert not operator_tokens.is_operator(env, "Basic adm") and not operator_tokens.is_operator(env, None)
    assert not operator_tokens.is_operator(SimpleNamespace(), "Bearer ")


def test_a_scrape_takes_the_metrics_token_or_the_admin_token_when_there_is_none():
    assert operator_tokens.metrics_token(SimpleNamespace(ADMIN_TOKEN="adm")) == "adm"
    assert operator_tokens.metrics_token(SimpleNamespace(ADMIN_TOKEN="adm", METRICS_TOKEN="met")) == "met"
    assert operator_tokens.metrics_token(SimpleNamespace()) is None
    assert not operator_tokens.bearer_is("Bearer x", None)
