"""Secrets never leave the process; with content capture off, no content does either (only its
size); the provider and server are named from the base URL."""

from __future__ import annotations

import pytest
from openai_checks import attrs, everything
from openai_support import SECRET, needs

CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "input.value",
    "output.value",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
)


def test_credentials_never_appear(openai_app):
    app = openai_app(
        """
        import openai
        client = openai.OpenAI(max_retries=0, default_headers={"X-Api-Key": "sk-header-SECRET-1"},
                               default_query={"key": "query-SECRET-2"})
        client.chat.completions.create(
            model="gpt-secret", messages=[{"role": "user", "content": "hello"}],
            extra_headers={"Authorization": "Bearer sk-extra-SECRET-3", "api-key": "azure-SECRET-4"},
            extra_body={"api_key": "body-SECRET-5"})
        for chunk in client.chat.completions.create(model="gpt-secret", stream=True,
                                                    messages=[{"role": "user", "content": "again"}]):
            pass
        try:
            openai.OpenAI(max_retries=0, api_key="sk-bad-SECRET-6").chat.completions.create(
                model="error-400", messages=[{"role": "user", "content": "x"}])
        except openai.BadRequestError:
            pass
    """,
        spans=3,
    )
    sent = everything(app.spans)
    for secret in (SECRET, "SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "SECRET-5", "SECRET-6"):
        assert secret not in sent
    # ... though the application really sent them.
    assert app.requests[0]["headers"]["authorization"] == "Bearer sk-extra-SECRET-3"
    assert all(span["attributes"] for span in app.llm())


def test_capture_off_records_sizes_only(openai_app):
    app = openai_app(
        """
        import openai
        client = openai.OpenAI(max_retries=0)
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
        client.chat.completions.create(model="gpt-quiet", messages=[
            {"role": "system", "content": "private system"}, {"role": "user", "content": "private question"}])
        client.chat.completions.create(model="gpt-quiet", tools=tools,
                                       messages=[{"role": "user", "content": "private tools"}])
        for chunk in client.chat.completions.create(model="gpt-quiet", stream=True,
                                                    messages=[{"role": "user", "content": "private stream"}]):
            pass
        client.embeddings.create(model="embed-quiet", input="private embedding")
        client.completions.create(model="davinci-quiet", prompt="private prompt")
    """,
        spans=5,
        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"},
    )
    assert "private" not in everything(app.spans)
    plain, tools, stream, embedding, completion = app.llm()
    for span in app.llm():
        assert not [k for k in CONTENT_KEYS if k in attrs(span)], span["name"]
    assert attrs(plain)["llmprobe.input.size"] == len("private system") + len("private question")
    assert attrs(plain)["llmprobe.output.size"] == len("Echo: private question")
    assert attrs(stream)["llmprobe.output.size"] == len("Echo: private stream")
    assert attrs(embedding)["llmprobe.input.size"] == len("private embedding")
    assert attrs(completion)["llmprobe.input.size"] == len("private prompt")
    # Everything else is still there.
    assert attrs(plain)["gen_ai.usage.output_tokens"] == 3
    assert attrs(tools)["gen_ai.response.finish_reasons"] == ["tool_calls"]


@needs("resources.responses")
def test_capture_off_responses(openai_app):
    app = openai_app(
        """
        import openai
        openai.OpenAI(max_retries=0).responses.create(model="gpt-r", input="private input", instructions="secret rules")
    """,
        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"},
    )
    span = app.one()
    assert not [k for k in CONTENT_KEYS if k in attrs(span)]
    assert attrs(span)["llmprobe.system_instructions.size"] == len("secret rules")
    assert "private" not in everything([span["attributes"]]) and "secret rules" not in everything([span])


PROXIED = """
import inspect, json, openai
try:
    import httpx2 as httpx  # openai 3.x
except ImportError:
    import httpx
proxy = {proxy!r}
parameters = inspect.signature(httpx.Client.__init__).parameters
http_client = httpx.Client(**({{"proxy": proxy}} if "proxy" in parameters else {{"proxies": proxy}}))
client = openai.OpenAI(base_url={base!r}, http_client=http_client, max_retries=0)
r = client.chat.completions.create(model="qwen-plus", messages=[{{"role": "user", "content": "via proxy"}}])
print(r.choices[0].message.content)
"""


@pytest.mark.parametrize(
    ("base", "provider", "host", "port"),
    [
        ("http://dashscope.aliyuncs.com/compatible-mode/v1", "dashscope", "dashscope.aliyuncs.com", 80),
        ("http://api.deepseek.com:8080/v1", "deepseek", "api.deepseek.com", 8080),
        ("http://llm.internal.example:8000/v1", "openai", "llm.internal.example", 8000),
    ],
)
def test_provider_from_the_base_url(openai_app, fake_openai, base, provider, host, port):
    """An OpenAI-compatible endpoint reached through this SDK (here through an HTTP proxy, the
    fake server, so that nothing leaves the machine)."""
    proxy = f"http://127.0.0.1:{fake_openai.port}"
    app = openai_app(
        PROXIED.format(proxy=proxy, base=base),
        env={"OPENAI_BASE_URL": None, "NO_PROXY": None, "no_proxy": None},
    )
    assert app.lines()[-1] == "Echo: via proxy"
    assert app.requests[0]["target"].startswith(base.replace("/v1", ""))
    span = app.one()
    a = attrs(span)
    assert (a["gen_ai.provider.name"], a["server.address"], a["server.port"]) == (provider, host, port)
    assert span["name"] == "chat qwen-plus"


def test_azure_client_is_azure(openai_app, fake_openai):
    app = openai_app(f"""
        import openai
        client = openai.AzureOpenAI(azure_endpoint="http://127.0.0.1:{fake_openai.port}", api_version="2024-06-01",
                                    api_key="azure-key-SECRET", max_retries=0)
        try:
            client.chat.completions.create(model="gpt-4o", messages=[{{"role": "user", "content": "azure"}}])
        except openai.NotFoundError:
            print("404")  # the fake server has no Azure deployment routes
    """)
    assert app.lines()[-1] == "404"
    span = app.one()
    assert attrs(span)["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs(span)["error.type"] == "openai.NotFoundError"
    assert "azure-key-SECRET" not in everything(app.spans)
    assert app.requests[0]["headers"]["api-key"] == "azure-key-SECRET"
