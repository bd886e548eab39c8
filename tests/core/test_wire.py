"""The Worker <-> bucket payloads: round trips, and clear errors for anything else."""
import pytest

from src.tollgate.algorithms import Limit
from src.tollgate.decision import decide
from src.tollgate.rules import Rule
from src.tollgate.wire import WireError, decode_decide, decode_decision, encode_decide, encode_decision

RULES = (Rule("burst", Limit("gcra", 20, 1000, 40)),
         Rule("daily", Limit("fixed_window", 5, 86_400_000, 5), shadow=True, on_error="closed"))


def test_decide_payload_round_trips_and_is_decoded_once_per_text():
    text = encode_decide(RULES, 3)
    rules, cost = decode_decide(text)
    assert cost == 3 and [(r.name, r.limit, r.shadow, r.on_error) for r in rules] == \
        [(r.name, r.limit, r.shadow, r.on_error) for r in RULES]
    assert decode_decide(text) is decode_decide(text)      # cached: a bucket validates a payload once


def test_decision_round_trips():
    d = decide(RULES, {}, 1, 1_764_000_000_000)
    back = decode_decision(encode_decision(d))
    assert back.allowed and back.denied_by is None and back.results == d.results and back.new_states == {}


def test_a_denial_is_the_text_a_json_encoder_writes_whatever_the_rule_names():
    """The bucket's answer is built by hand (it runs per decision): the text must still be
    exactly what an older Worker, decoding with json, expects, quotes and non-ASCII included."""
    import json
    rules = (Rule('say "hi"\\ ü', Limit("fixed_window", 1, 60_000, 1)), Rule("daily", Limit("gcra", 5, 1000, 5)))
    used = decide(rules, {}, 1, 1_764_000_000_000)
    d = decide(rules, {r: s for r, s in used.new_states.items()}, 1, 1_764_000_000_001)
    text = encode_decision(d)
    assert text == json.dumps({"v": 1, "ok": 0, "by": d.denied_by, "retry": d.retry_after_ms,
                               "res": [[r.name, int(r.allowed), int(r.shadow), r.remaining, r.reset_ms,
                                        r.retry_after_ms] for r in d.results]}, separators=(",", ":"))
    back = decode_decision(text)
    assert not back.allowed and back.denied_by == 'say "hi"\\ ü' and back.results == d.results


@pytest.mark.parametrize("text", ['{"v":1,"ok":1}', '{"v":1,"ok":1,"by":null,"retry":0,"res":[["a",1]]}',
                                  '{"v":2,"ok":1,"by":null,"retry":0,"res":[]}', "not json", "[]"])
def test_a_decision_of_another_shape_is_a_wire_error(text):
    with pytest.raises(WireError):
        decode_decision(text)
