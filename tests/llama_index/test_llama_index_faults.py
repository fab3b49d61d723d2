"""The application cannot tell llmprobe is there, even when llmprobe fails.

One fixed transcript of LlamaIndex work (llama_index_transcript.py: queries sync, async,
streamed and left early; a retriever; a reranker; a chat engine; a mock LLM's chat, streams and
completion; a failing LLM; a failing tool; LlamaIndex's OpenAI class against the fake server,
streamed and failing; a workflow; a FunctionAgent with two tools) is run without llmprobe,
under llmprobe, and under llmprobe with its code made to raise (llama_index_faults.py). What the
application got, its current span after each call and what the server received must be the
same in every run."""

from __future__ import annotations

import pytest
from genai_fixtures import TranscriptRuns
from llama_index_support import VERSIONS

APP = """
import json
import llama_index_faults
MODE = {mode!r}
if MODE != "plain":
    llama_index_faults.inject(MODE)
import llama_index_transcript
llama_index_transcript.main()
print(json.dumps({{"patched": MODE != "plain" and llama_index_faults.patched(), "faults": llama_index_faults.calls["count"]}}))
"""

RUNS = TranscriptRuns(APP)


@pytest.mark.parametrize("mode", ["none", "hooks", "after", "core", "late-core"])
def test_application_sees_no_difference(llama_app, mode):
    expected, expected_bodies = RUNS.plain(llama_app)
    names = dict(expected)
    # The transcript itself is meaningful: answers, streams, errors, the server's answers.
    # MockLLM answers "text" repeated (how many times and with which spaces differs by version).
    assert set(names["query"]["returned"]["response"].split()) == {"text"}
    assert [s["doc"] for s in names["query"]["returned"]["sources"]] == ["france", "germany"]
    assert set(names["streamed query"]["returned"].split()) == {"text"}
    assert names["streamed query left early"]["returned"].strip() == "text"
    assert [s["doc"] for s in names["reranked query"]["returned"]["sources"]] == ["germany"]
    assert len(names["llm stream_chat"]["returned"]) > 1
    assert set("".join(names["llm stream_chat"]["returned"]).split()) == {"text"}
    assert names["llm error"]["raised"] == "ValueError: llm failed"
    assert (
        names["tool error"].get("raised") == "ValueError: tool failed"
        or names["tool error"]["returned"]["is_error"]
    )
    if VERSIONS["llama-index-llms-openai"]:
        assert names["openai chat"]["returned"] == {"role": "assistant", "content": "Echo: one"}
        assert "".join(names["openai stream_chat"]["returned"]) == "Echo: two"
        assert names["openai error"]["raised"].startswith("BadRequestError: Error code: 400")
    if "agent" in names:
        calls = names["agent"]["returned"]["tool_calls"]
        assert [c[0] for c in calls] == ["get_weather", "get_time"]
    assert all(entry.get("own_span_current", True) for _, entry in expected)

    app, transcript, status, bodies = RUNS.run(llama_app, mode)
    assert status["patched"] is True, "llmprobe's handlers were not installed: the test would prove nothing"
    assert transcript == expected
    assert bodies == expected_bodies
    warnings = app.result.warnings()
    # Nothing else on stderr: no traceback, no "Exception ignored in" a finalizer of llmprobe's.
    assert [line for line in app.result.stderr.splitlines() if line.strip()] == warnings, app.result.stderr
    if mode == "none":
        assert warnings == []
        assert status["faults"] == 0
        assert len(app.spans) > 50
    else:
        assert status["faults"] > 0, "no injected fault was hit"
        assert warnings, "a failing hook is reported on stderr"
        assert all("injected fault" in w or "failed" in w for w in warnings), warnings
        assert len(warnings) == len(set(warnings)) <= 30, warnings
