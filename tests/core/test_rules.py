"""Which requests a rule counts."""
from src.tollgate.algorithms import Limit
from src.tollgate.rules import MATCH_ALL, Match, Rule


def test_default_matches_everything():
    assert MATCH_ALL.matches("DELETE", "/anything/at/all")
    assert Rule("r", Limit("gcra", 1, 1000, 1)).matches("GET", "/")


def test_methods_and_globs():
    m = Match(frozenset({"get", "POST"}), ("/v1/search*", "/v2/items/*/price"))
    assert m.matches("GET", "/v1/search")
    assert m.matches("POST", "/v1/search/deep/er")
    assert m.matches("GET", "/v2/items/42/price")
    assert not m.matches("PUT", "/v1/search")
    assert not m.matches("GET", "/v1/other")
    assert not m.matches("GET", "/v0/v1/search")          # anchored at the start
    assert not m.matches("GET", "/v2/items/42/price/x")   # and at the end


def test_paths_only_or_methods_only():
    assert Match(None, ("/admin*",)).matches("PATCH", "/admin/users")
    assert Match(frozenset({"POST"}), None).matches("POST", "/x")
    assert not Match(frozenset({"POST"}), None).matches("GET", "/x")


def test_equal_matches_compare_equal():
    assert Match(frozenset({"GET"}), ("/a*",)) == Match(frozenset({"get"}), ("/a*",))
    assert hash(Match(None, None)) == hash(MATCH_ALL)
