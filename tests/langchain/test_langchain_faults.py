"""The application cannot tell llmprobe is there, even when llmprobe fails.

One fixed transcript of LangChain work (langchain_transcript.py: chains invoked, streamed, left
early, batched, in parallel and async; errors; an LLM; tools; a retriever; embeddings; ChatOpenAI
against the fake server; a LangGraph graph sync and async, streamed and with astream_events; the
user's own callbacks) is run without llmprobe, under llmprobe, and under llmprobe with its code
made to raise (langchain_faults.py). What the application got, what its own callbacks saw, its
current span after each call and what the server received must be the same in every run."""

from __future__ import annotations

import pytest
from genai_fixtures import TranscriptRuns

APP = """
import json
import langchain_faults
MODE = {mode!r}
if MODE != "plain":
    langchain_faults.inject(MODE)
import langchain_transcript
langchain_transcript.main()
print(json.dumps({{"patched": langchain_faults.patched(), "faults": langchain_faults.calls["count"]}}))
"""

RUNS = TranscriptRuns(APP)


@pytest.mark.parametrize("mode", ["none", "hooks", "after", "core"])
def test_application_sees_no_difference(langchain_app, mode):
    expected, expected_bodies = RUNS.plain(langchain_app)
    names = dict(expected)
    # The transcript itself is meaningful: answers, errors, streams and events.
    assert names["invoke"]["returned"] == "one"
    assert names["chain error"]["raised"].startswith("KeyError")
    assert names["tool error"]["raised"] == "ValueError: tool failed"
    assert len(names["astream_events"]["returned"]) > 10
    assert all(entry.get("own_span_current", True) for _, entry in expected)

    app, transcript, status, bodies = RUNS.run(langchain_app, mode)
    assert status["patched"] is True, "llmprobe's handler was not installed: the test would prove nothing"
    assert transcript == expected
    assert bodies == expected_bodies
    assert "Error in" not in app.result.stderr, "LangChain reported a failing callback"
    warnings = app.result.warnings()
    if mode == "none":
        assert warnings == []
        assert status["faults"] == 0
        assert len(app.spans) > 50
    else:
        assert status["faults"] > 0, "no injected fault was hit"
        assert warnings, "a failing hook is reported on stderr"
        assert all("injected fault" in w or "failed" in w for w in warnings), warnings
        assert len(warnings) == len(set(warnings)) <= 30, warnings
