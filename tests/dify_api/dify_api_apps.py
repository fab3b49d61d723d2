"""Dify's apps run end to end inside Dify's own api/ (1.12), as its service API runs them: the Flask
app built as Dify's app.py builds it, a workspace with its owner account, OpenAI configured as the
workspace's model provider, then one app per mode (chat, completion, agent-chat, advanced-chat,
workflow), each created and configured through Dify's own services, and each run through
AppGenerateService.generate inside a request, blocking and streamed; the chat app a second turn in
the same conversation.

Dify reaches every model through its plugin daemon: a local stand-in for it (plugin_daemon.py, on a
free port, in this process) answers every chat with "Paris is the capital.", and prints the
traceparent each model call carried.

Run with Dify's api/ folder as the working directory and on sys.path, with the env of
dify_services (Postgres and Redis, migrated), plainly or under `instrument`:

    python dify_api_apps.py [chat] [completion] [agent-chat] [advanced-chat] [workflow]

(every mode when none is named). Per run it prints `answer <run>: <answer>`, for the apps with
conversations `conversation <run>: <id>`, for workflow runs `workflow run <run>: <id>`, for the
agent `tool <run>: <call> -> <result>`; at the end the daemon endpoints Dify called. It exits 1
when a run did not answer.
"""

from __future__ import annotations

import json
import os
import sys
import time

from plugin_daemon import API_KEY, CALLED, MODEL, PROVIDER, WORDS, serve

MODES = ["chat", "completion", "agent-chat", "advanced-chat", "workflow"]
QUESTION = "What is the capital of France?"
FAILED: list[str] = []  # the runs that did not answer


# ---- Dify: the workspace, the model provider, the apps -------------------------------------------


def workspace() -> str:
    """An account and the workspace it owns, as Dify's first setup makes them; the account's id."""
    from services.account_service import AccountService, TenantService

    account = AccountService.create_account(
        email="traveller@example.com", name="Traveller", interface_language="en-US", is_setup=True
    )
    TenantService.create_owner_tenant_if_not_exist(account, name="Travel Workspace", is_setup=True)
    return account.id


def signed_in(account_id: str):
    """The account, with its workspace, as the console loads it for each request."""
    from services.account_service import AccountService

    return AccountService.load_user(account_id)


def configure_model(tenant_id: str) -> None:
    """The OpenAI plugin's API key for the workspace, and gpt-4o-mini as its default chat model,
    as the console's model provider settings save them."""
    from services.model_provider_service import ModelProviderService

    service = ModelProviderService()
    service.create_provider_credential(
        tenant_id=tenant_id, provider=PROVIDER, credentials={"openai_api_key": API_KEY}, credential_name="key"
    )
    service.update_default_model_of_model_type(
        tenant_id=tenant_id, model_type="llm", provider=PROVIDER, model=MODEL
    )


def model() -> dict:
    return {"provider": PROVIDER, "name": MODEL, "mode": "chat", "completion_params": {"temperature": 0.3}}


def new_app(account, mode: str, name: str):
    from services.app_service import AppService

    args = {"name": name, "mode": mode, "icon_type": "emoji", "icon": "🧭", "icon_background": "#FFEAD5"}
    return AppService().create_app(account.current_tenant_id, args, account)


def configure(app, account, config: dict) -> None:
    """A chat, completion or agent app's model config, as the console's model-config endpoint saves it."""
    from events.app_event import app_model_config_was_updated
    from extensions.ext_database import db
    from models.model import AppMode, AppModelConfig
    from services.app_model_config_service import AppModelConfigService

    validated = AppModelConfigService.validate_configuration(
        tenant_id=app.tenant_id, config=config, app_mode=AppMode.value_of(app.mode)
    )
    app_model_config = AppModelConfig(app_id=app.id, created_by=account.id, updated_by=account.id)
    app_model_config = app_model_config.from_model_config_dict(validated)
    db.session.add(app_model_config)
    db.session.flush()
    app.app_model_config_id = app_model_config.id
    db.session.commit()
    app_model_config_was_updated.send(app, app_model_config=app_model_config)


def publish(app, account, graph: dict) -> None:
    """A workflow app's draft saved and published, as the console's workflow endpoints do."""
    from extensions.ext_database import db
    from models.model import App
    from services.workflow_service import WorkflowService
    from sqlalchemy.orm import Session

    service = WorkflowService()
    service.sync_draft_workflow(
        app_model=app,
        graph=graph,
        features={},
        unique_hash=None,
        account=account,
        environment_variables=[],
        conversation_variables=[],
    )
    with Session(db.engine) as session:
        workflow = service.publish_workflow(session=session, app_model=app, account=account)
        session.get(App, app.id).workflow_id = workflow.id
        session.commit()
    db.session.refresh(app)


def llm_node(user_text: str) -> dict:
    return {
        "id": "llm",
        "data": {
            "type": "llm",
            "title": "LLM",
            "model": model(),
            "prompt_template": [
                {"role": "system", "text": "You are a travel guide. Answer in one sentence."},
                {"role": "user", "text": user_text},
            ],
            "context": {"enabled": False, "variable_selector": []},
            "vision": {"enabled": False},
        },
    }


def graph(nodes: list[dict]) -> dict:
    edges = [
        {"id": f"{a['id']}-{b['id']}", "source": a["id"], "target": b["id"]} for a, b in zip(nodes, nodes[1:])
    ]
    return {"nodes": nodes, "edges": edges}


def make_app(account, mode: str):
    """The app of a mode, created and configured; the args of a run of it."""
    simple = {"model": model(), "pre_prompt": "You are a travel guide. Answer in one sentence."}
    # (Not naming the conversation: Dify would do it with one more model call, on a thread of its own.)
    ask = {"inputs": {}, "query": QUESTION, "auto_generate_name": False}
    if mode == "chat":
        app = new_app(account, mode, "Travel Chat")
        configure(app, account, simple)
    elif mode == "completion":
        app = new_app(account, mode, "Travel Completion")
        form = [{"paragraph": {"label": "Query", "variable": "query", "required": True, "default": ""}}]
        configure(app, account, {"model": model(), "pre_prompt": "{{query}}", "user_input_form": form})
        ask = {"inputs": {"query": QUESTION}, "query": ""}
    elif mode == "agent-chat":
        app = new_app(account, mode, "Travel Agent")
        tool = {
            "provider_type": "builtin",
            "provider_id": "time",
            "provider_name": "time",
            "tool_name": "weekday",
            "tool_parameters": {},
            "enabled": True,
        }
        agent = {"enabled": True, "strategy": "function_call", "max_iteration": 3, "tools": [tool]}
        configure(app, account, {**simple, "agent_mode": agent})
    elif mode == "advanced-chat":
        app = new_app(account, mode, "Travel Advanced")
        start = {"id": "start", "data": {"type": "start", "title": "Start", "variables": []}}
        answer = {"id": "answer", "data": {"type": "answer", "title": "Answer", "answer": "{{#llm.text#}}"}}
        publish(app, account, graph([start, llm_node("{{#sys.query#}}"), answer]))
    elif mode == "workflow":
        app = new_app(account, mode, "Travel Workflow")
        query = {
            "variable": "query",
            "label": "Query",
            "type": "text-input",
            "required": True,
            "max_length": 256,
        }
        start = {"id": "start", "data": {"type": "start", "title": "Start", "variables": [query]}}
        output = {"variable": "answer", "value_selector": ["llm", "text"]}
        end = {"id": "end", "data": {"type": "end", "title": "End", "outputs": [output]}}
        publish(app, account, graph([start, llm_node("{{#start.query#}}"), end]))
        ask = {"inputs": {"query": QUESTION}}
    else:
        raise ValueError(f"no such mode: {mode}")
    return app, ask


# ---- Running an app, as the service API's endpoints do ------------------------------------------


# The service API's endpoint of each mode.
ENDPOINTS = {"completion": "/v1/completion-messages", "workflow": "/v1/workflows/run"}


def api_key(flask_app, app_id: str) -> str:
    """A service API key of the app, as the console's API access page makes one."""
    from extensions.ext_database import db
    from models.model import ApiToken, App

    with flask_app.test_request_context():
        app = db.session.get(App, app_id)
        token = ApiToken(app_id=app.id, tenant_id=app.tenant_id, type="app")
        token.token = ApiToken.generate_api_key("app-", 24)
        db.session.add(token)
        db.session.commit()
        return token.token


def generate(flask_app, mode: str, key: str, args: dict, streaming: bool) -> dict:
    """One run of the app by an end user ("user-7") of the service API: a request to the mode's
    endpoint, through Flask's request handling as a server runs it; what it answered (the
    blocking response, or the streamed events gathered)."""
    body = {**args, "user": "user-7", "response_mode": "streaming" if streaming else "blocking"}
    client = flask_app.test_client()
    response = client.post(
        ENDPOINTS.get(mode, "/v1/chat-messages"), json=body, headers={"Authorization": f"Bearer {key}"}
    )
    text = response.get_data(as_text=True)
    if response.status_code != 200:
        return {"error": f"HTTP {response.status_code}: {text[:300]}"}
    if not streaming:
        return json.loads(text)
    return gather([json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")])


def gather(events: list[dict]) -> dict:
    """A streamed run's events as one answer, as a client puts them together."""
    answer, result = "", {"tools": []}
    for event in events:
        kind = event.get("event")
        if kind == "agent_thought" and event.get("tool") and event.get("observation"):
            result["tools"].append(f"{event['tool']} {event.get('tool_input')} -> {event['observation']}")
        if kind in ("message", "agent_message"):
            answer += event.get("answer") or ""
        elif kind == "text_chunk":
            answer += event["data"]["text"]
        elif kind in ("error", "workflow_finished") and event.get("data", {}).get("error"):
            result["error"] = event["data"]["error"]
        elif kind == "error":
            result["error"] = event.get("message")
        for key in ("conversation_id", "workflow_run_id"):
            if event.get(key):
                result[key] = event[key]
    result["answer"] = answer
    return result


def report(label: str, response: dict) -> str | None:
    """Prints the run's answer (and conversation, workflow run); the conversation id, for a next
    turn. A run without an answer is counted in FAILED."""
    if "data" in response and "outputs" in response["data"]:  # a blocking workflow run
        data = response["data"]
        outputs = data.get("outputs") or {}
        answer = outputs.get("answer") or f"(status {data.get('status')}: {data.get('error')})"
    else:
        answer = response.get("answer") if not response.get("error") else f"(error: {response['error']})"
    print(f"answer {label}: {answer}", flush=True)
    if answer != "".join(WORDS):
        FAILED.append(label)
    if response.get("workflow_run_id"):
        print(f"workflow run {label}: {response['workflow_run_id']}", flush=True)
    for tool in response.get("tools") or []:
        print(f"tool {label}: {tool}", flush=True)
    conversation = response.get("conversation_id")
    if conversation:
        print(f"conversation {label}: {conversation}", flush=True)
    return conversation


def run_mode(flask_app, account_id: str, mode: str) -> None:
    """The mode's app made, then run blocking (not the agent: Dify runs agents streamed only) and
    streamed; the chat app's blocking conversation a second turn."""
    with flask_app.test_request_context():
        app, args = make_app(signed_in(account_id), mode)
        app = app.id
    key = api_key(flask_app, app)
    began = time.monotonic()
    if mode != "agent-chat":
        conversation = report(mode, generate(flask_app, mode, key, args, streaming=False))
    report(f"{mode} streamed", generate(flask_app, mode, key, args, streaming=True))
    if mode == "chat":
        turn = {**args, "query": "And of Italy?", "conversation_id": conversation}
        report("chat second turn", generate(flask_app, mode, key, turn, streaming=False))
    print(f"seconds {mode}: {time.monotonic() - began:.2f}", file=sys.stderr, flush=True)


def main(modes: list[str]) -> int:
    os.environ["PLUGIN_DAEMON_URL"] = serve()  # read by Dify's settings, on their first import below
    began = time.monotonic()
    from app_factory import create_app

    flask_app = create_app()
    print(f"seconds flask app: {time.monotonic() - began:.2f}", file=sys.stderr, flush=True)
    began = time.monotonic()
    with flask_app.test_request_context():
        account_id = workspace()
        configure_model(signed_in(account_id).current_tenant_id)
    print(f"seconds workspace: {time.monotonic() - began:.2f}", file=sys.stderr, flush=True)
    for mode in modes:
        run_mode(flask_app, account_id, mode)
    for endpoint in sorted(CALLED):
        print(f"daemon endpoint: {endpoint}", flush=True)
    if FAILED:
        print(f"no answer: {', '.join(FAILED)}", file=sys.stderr, flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    unknown = [word for word in sys.argv[1:] if word not in MODES]
    if unknown:
        sys.exit(f"no such mode: {', '.join(unknown)} (modes: {' '.join(MODES)})")
    sys.exit(main(sys.argv[1:] or MODES))
