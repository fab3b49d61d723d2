"""The application cannot tell llmprobe is there, even when llmprobe fails.

One fixed transcript of calls (openai_transcript.py: sync and async, streams read to the end,
left by break and read with next(), errors, SDK retries, a timeout, a broken stream, raw
responses, helpers, embeddings, text completions, the Responses API) is run without llmprobe,
under llmprobe, and under llmprobe with its hooks made to raise (openai_faults.py). What the
application got (returned values, exceptions, streamed chunks, its current span after each
call) and what the server received (every request's body and headers, and how many requests)
must be the same in every run."""

from __future__ import annotations

import json

import pytest

APP = """
import json
import openai_faults
MODE = {mode!r}
if MODE != "plain":
    openai_faults.inject(MODE)
import openai_transcript
openai_transcript.main()
print(json.dumps({{"patched": openai_faults.patched(), "faults": openai_faults.calls["count"]}}))
"""

# Headers that differ between any two runs of the same application (the SDK's per-request
# randomness), compared by presence only.
VOLATILE_HEADERS = {"idempotency-key", "x-stainless-timeout"}


def _requests(app) -> list:
    out = []
    for request in app.requests:
        headers = {
            k: (v if k not in VOLATILE_HEADERS else "*")
            for k, v in request["headers"].items()
            if k not in ("content-length", "host")
        }
        out.append([request["path"], request["raw"].decode(), sorted(headers.items())])
    return out


# The run without llmprobe, made once for all modes.
_baseline: dict = {}


def _run(openai_app, mode: str):
    app = openai_app(APP.format(mode=mode), spans=0, instrument=mode != "plain", timeout=180)
    transcript, status = app.lines()[-2], json.loads(app.lines()[-1])
    return app, json.loads(transcript), status


def _plain(openai_app):
    if "plain" not in _baseline:
        app, transcript, _ = _run(openai_app, "plain")
        _baseline["plain"] = (transcript, _requests(app))
    return _baseline["plain"]


@pytest.mark.parametrize("mode", ["none", "hooks", "after", "core", "late-core"])
def test_application_sees_no_difference(openai_app, mode):
    expected, expected_requests = _plain(openai_app)
    assert len(expected) >= 20
    # The transcript itself is meaningful: it has answers, streams, errors and the retries.
    names = dict(expected)
    assert names["chat"]["returned"]["choices"][0]["message"]["content"] == "Echo: transcript question"
    assert names["error-429"]["raised"] == "openai.RateLimitError"
    assert all(entry["own_span_current"] for _, entry in expected)

    app, transcript, status = _run(openai_app, mode)
    assert status["patched"] is True, "llmprobe's wrappers were not installed: the test would prove nothing"
    assert transcript == expected
    assert _requests(app) == expected_requests
    warnings = app.result.warnings()
    if mode == "none":
        assert warnings == []
        assert len(app.llm()) >= 20
        assert status["faults"] == 0
    else:
        assert status["faults"] > 0, "no injected fault was hit"
        assert warnings, "a failing hook is reported on stderr"
        assert all("injected fault" in w or "failed" in w for w in warnings), warnings
        # Each failing hook says so once, not once per call.
        assert len(warnings) == len(set(warnings)) <= 12, warnings
