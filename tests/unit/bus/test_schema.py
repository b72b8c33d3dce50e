"""JSON Schema checks of requests, responses and frames, on their own."""

import pytest

from hearthnet.bus.capability import CapabilityDescriptor
from hearthnet.bus.schema import SchemaValidator
from hearthnet.errors import HearthNetError

REQ = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}, "tags": {"type": "array", "items": {"type": "string"}}},
       "required": ["n"], "additionalProperties": False}


def desc(req=REQ, resp=None, frame=None):
    return CapabilityDescriptor(name="test.thing", version=(1, 0), request_schema=req, response_schema=resp or {"type": "object"},
                                stream_schema=frame)


@pytest.mark.parametrize("body, path", [({}, "/"), ({"n": 0}, "/n"), ({"n": 1, "tags": ["a", 2]}, "/tags/1"), ({"n": 1, "x": 1}, "/"), ([], "/")])
def test_a_bad_request_names_the_failing_path(body, path):
    with pytest.raises(HearthNetError) as e:
        SchemaValidator().validate_request(desc(), body)
    assert e.value.code == "schema_invalid" and e.value.details["path"] == path and e.value.message.startswith("test.thing@1.0 request at")


def test_good_values_pass_and_responses_and_frames_are_checked_too():
    v = SchemaValidator()
    v.validate_request(desc(), {"n": 3, "tags": ["x"]})
    d = desc(resp={"type": "object", "required": ["ok"]}, frame={"type": "object", "required": ["event"]})
    with pytest.raises(HearthNetError, match="response"):
        v.validate_response(d, {})
    with pytest.raises(HearthNetError, match="stream frame"):
        v.validate_stream_frame(d, {"data": 1})
    v.validate_stream_frame(desc(), {"anything": True})  # no stream schema: nothing to check
