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


@pytest.mark.parametrize("text", ['{"v":1,"ok":1}', '{"v":1,"ok":1,"by":null,"retry":0,"res":[["a",1]]}',
                                  '{"v":2,"ok":1,"by":null,"retry":0,"res":[]}', "not json", "[]"])
def test_a_decision_of_another_shape_is_a_wire_error(text):
    with pytest.raises(WireError):
        decode_decision(text)
