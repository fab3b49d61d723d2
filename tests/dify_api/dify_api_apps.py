"""Dify's apps run end to end inside Dify's own api/ (1.12), as its service API runs them: the Flask
app built as Dify's app.py builds it, a workspace with its owner account, OpenAI configured as the
workspace's model provider, then one app per mode (chat, completion, agent-chat, advanced-chat,
workflow), each created and configured through Dify's own services, and each run through
AppGenerateService.generate inside a request, blocking and streamed; the chat app a second turn in
the same conversation. And a chat app with a knowledge base (knowledge), run once blocking, so that
Dify's retrieval (DatasetRetrieval.retrieve) runs before the model call: the knowledge base is an
"economy" one (a Jieba keyword table in Postgres: no vector store, no embedding model), its one
document indexed in this process by the task a Celery worker would run (none runs here).

Dify reaches every model through its plugin daemon: a local stand-in for it (plugin_daemon.py, on a
free port, in this process) answers every chat with "Paris is the capital.", and prints the
traceparent each model call carried.

Run with Dify's api/ folder as the working directory and on sys.path, with the env of
dify_services (Postgres and Redis, migrated), plainly or under `instrument`:

    python dify_api_apps.py [chat] [completion] [agent-chat] [advanced-chat] [workflow] [knowledge]

(every mode when none is named). Per run it prints `answer <run>: <answer>`, for the apps with
conversations `conversation <run>: <id>`, for workflow runs `workflow run <run>: <id>`, for the
agent `tool <run>: <call> -> <result>`, for the knowledge app `retrieved <run>: <document>
<segment> ...` per source it showed; at the end the daemon endpoints Dify called. It exits 1 when a
run did not answer (or the knowledge app showed no source).
"""

from __future__ import annotations

import json
import os
import sys
import time

from plugin_daemon import API_KEY, CALLED, MODEL, PROVIDER, WORDS, serve

MODES = ["chat", "completion", "agent-chat", "advanced-chat", "workflow", "knowledge"]
QUESTION = "What is the capital of France?"
FACT = "Paris is the capital of France. It is known for the Eiffel Tower."
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


# ---- Dify: a knowledge base ----------------------------------------------------------------------


def knowledge_base(account) -> str:
    """An "economy" knowledge base with one text document, as the service API's create-by-text
    endpoint adds it (the text saved as an upload file, then the document), indexed; its id."""
    from extensions.ext_database import db
    from flask import g
    from services.dataset_service import DatasetService, DocumentService
    from services.entities.knowledge_entities.knowledge_entities import KnowledgeConfig
    from services.file_service import FileService

    g._login_user = account  # DocumentService reads the signed-in account (flask-login's current_user)
    tenant_id = account.current_tenant_id
    dataset = DatasetService.create_empty_dataset(
        tenant_id=tenant_id,
        name="Travel Facts",
        description=None,
        indexing_technique="economy",
        account=account,
    )
    text = FileService(db.engine).upload_text(
        text=FACT, text_name="france.txt", user_id=account.id, tenant_id=tenant_id
    )
    files = {"data_source_type": "upload_file", "file_info_list": {"file_ids": [text.id]}}
    config = KnowledgeConfig.model_validate(
        {
            "indexing_technique": "economy",
            "data_source": {"info_list": files},
            "process_rule": {"mode": "automatic"},
        }
    )
    DocumentService.document_create_args_validate(config)
    documents, _ = DocumentService.save_document_with_dataset_id(dataset, config, account, created_from="api")
    index(tenant_id, dataset.id, [document.id for document in documents])
    return dataset.id


def index(tenant_id: str, dataset_id: str, document_ids: list[str]) -> None:
    """The documents indexed here and now, by the task Dify queued for a Celery worker (the message
    stays in Redis, unread); it fails unless each document and all its segments are completed."""
    from extensions.ext_database import db
    from models.dataset import Document, DocumentSegment
    from tasks.document_indexing_task import priority_document_indexing_task

    priority_document_indexing_task(tenant_id, dataset_id, document_ids)
    db.session.expire_all()
    for document_id in document_ids:
        document = db.session.get(Document, document_id)
        segments = db.session.query(DocumentSegment).filter_by(document_id=document_id).all()
        statuses = sorted({segment.status for segment in segments})
        if document.indexing_status != "completed" or not segments or statuses != ["completed"]:
            raise RuntimeError(
                f"document {document.name} not indexed: {document.indexing_status} {document.error}, "
                f"segments {statuses}"
            )
        print(f"indexed {document.name}: {len(segments)} segment(s) completed", file=sys.stderr, flush=True)


def with_knowledge(config: dict, dataset_id: str) -> dict:
    """A model config with the knowledge base attached, as the console's model-config endpoint gets
    it: retrieval "multiple" (top 2, no reranking, no score threshold), sources shown."""
    datasets = {
        "retrieval_model": "multiple",
        "top_k": 2,
        "score_threshold_enabled": False,
        "score_threshold": None,
        "reranking_enabled": False,
        "datasets": {"strategy": "router", "datasets": [{"dataset": {"enabled": True, "id": dataset_id}}]},
    }
    return {
        **config,
        "dataset_configs": datasets,
        "dataset_query_variable": "",
        "retriever_resource": {"enabled": True},
    }


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
    elif mode == "knowledge":
        app = new_app(account, "chat", "Travel Knowledge")
        configure(app, account, with_knowledge(simple, knowledge_base(account)))
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


# The service API's endpoint of each mode (the others: chat-messages).
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
            # Dify may send a thought again once it is saved (timing): one line per thought.
            call = f"{event['tool']} {event.get('tool_input')} -> {event['observation']}"
            if call not in result["tools"]:
                result["tools"].append(call)
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


def report_sources(label: str, response: dict) -> None:
    """Prints the knowledge the answer drew on, as the response's metadata shows it (the sources
    shown with it); none is counted in FAILED."""
    sources = (response.get("metadata") or {}).get("retriever_resources") or []
    for source in sources:
        print(
            f"retrieved {label}: {source.get('document_name')} {(source.get('content') or '')[:40]} ...",
            flush=True,
        )
    if not sources:
        FAILED.append(f"{label} (no source)")


def run_mode(flask_app, account_id: str, mode: str) -> None:
    """The mode's app made, then run blocking (not the agent: Dify runs agents streamed only) and
    streamed (the knowledge app blocking only); the chat app's blocking conversation a second turn."""
    with flask_app.test_request_context():
        app, args = make_app(signed_in(account_id), mode)
        app = app.id
    key = api_key(flask_app, app)
    began = time.monotonic()
    if mode == "knowledge":
        response = generate(flask_app, mode, key, args, streaming=False)
        report(mode, response)
        report_sources(mode, response)
        print(f"seconds {mode}: {time.monotonic() - began:.2f}", file=sys.stderr, flush=True)
        return
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
