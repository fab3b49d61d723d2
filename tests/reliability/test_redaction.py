"""Promise: with LLMPROBE_REDACT_PATTERNS set, what the patterns match never leaves the process,
wherever a span holds it (attributes, JSON content, events, the status), and everything else
arrives as it was; a bad pattern gets one warning and the others still apply."""

from __future__ import annotations

import json

from span_query import one

EMAIL = r"[\w.+-]+@[\w-]+\.[\w.]+"
CUSTOMER = r"CUST-[0-9]{4,}"

APP = """
import json

from opentelemetry import trace

tracer = trace.get_tracer("redaction")
messages = [{"role": "user", "parts": [{"type": "text", "content": "mail ann@example.com about CUST-123456"}]}]
with tracer.start_as_current_span("chat gpt-4o") as span:
    span.set_attribute("gen_ai.input.messages", json.dumps(messages))
    span.set_attribute("gen_ai.user.id", "bob@example.org")
    span.set_attribute("input.value", "ticket CUST-98765, from carol@example.net")
    span.set_attribute("gen_ai.request.model", "gpt-4o")
    span.set_attribute("tags", ["plain", "dave@example.com"])
    span.set_attribute("gen_ai.usage.input_tokens", 12)
    try:
        raise ValueError("no account for erin@example.com")
    except ValueError as exc:
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, "lookup failed for erin@example.com")
print("app ran")
"""

SECRETS = ("@example.", "CUST-123456", "CUST-98765")


def _exported_bytes(receiver) -> bytes:
    return b"".join(r.get("body", b"") for r in receiver.trace_requests())


def test_matches_never_leave_the_process_and_the_rest_arrives_as_it_was(run, receiver, write_script):
    write_script("app.py", APP)
    result = run(
        ["python", "app.py"], receiver=receiver, env={"LLMPROBE_REDACT_PATTERNS": f"{EMAIL},{CUSTOMER}"}
    ).check()
    assert result.stdout == "app ran\n"
    assert result.warnings() == []
    span = one(receiver.wait_for(1), "chat gpt-4o")
    exported = _exported_bytes(receiver)
    assert exported, "no trace request was recorded"
    for secret in SECRETS:
        assert secret.encode() not in exported, f"{secret!r} left the process"
    attributes = span["attributes"]
    # JSON content is redacted string by string and stays the same JSON otherwise.
    messages = json.loads(attributes["gen_ai.input.messages"])
    assert messages == [
        {"role": "user", "parts": [{"type": "text", "content": "mail [REDACTED] about [REDACTED]"}]}
    ]
    assert attributes["gen_ai.user.id"] == "[REDACTED]"
    assert attributes["input.value"] == "ticket [REDACTED], from [REDACTED]"
    assert attributes["tags"] == ["plain", "[REDACTED]"]
    # What matches nothing is untouched.
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    [event] = span["events"]
    assert event["attributes"]["exception.message"] == "no account for [REDACTED]"
    assert span["status"]["message"] == "lookup failed for [REDACTED]"


def test_without_patterns_nothing_is_changed(run, receiver, write_script):
    write_script("app.py", APP)
    run(["python", "app.py"], receiver=receiver).check()
    span = one(receiver.wait_for(1), "chat gpt-4o")
    assert span["attributes"]["gen_ai.user.id"] == "bob@example.org"
    assert b"CUST-123456" in _exported_bytes(receiver)


def test_a_bad_pattern_gets_one_warning_and_the_others_apply(run, receiver, write_script):
    write_script("app.py", APP)
    result = run(
        ["python", "app.py"], receiver=receiver, env={"LLMPROBE_REDACT_PATTERNS": f"(unclosed,{EMAIL}"}
    ).check()
    [warning] = result.warnings()
    assert "LLMPROBE_REDACT_PATTERNS" in warning and "(unclosed" in warning, warning
    span = one(receiver.wait_for(1), "chat gpt-4o")
    assert span["attributes"]["gen_ai.user.id"] == "[REDACTED]"
    assert b"@example." not in _exported_bytes(receiver)
    # The bad pattern's own target is not redacted: the warning says it was left out.
    assert span["attributes"]["input.value"] == "ticket CUST-98765, from [REDACTED]"
