"""A Dify whose workflow engine has no layers (Dify before 1.9: core.workflow.graph_engine without
its layers package) is named once in the log and left alone: its import and its run go on."""

from __future__ import annotations


def test_an_engine_without_layers_is_named_once_and_left_alone(run, tmp_path):
    engine = tmp_path / "core" / "workflow" / "graph_engine"
    engine.mkdir(parents=True)
    for folder in (tmp_path / "core", tmp_path / "core" / "workflow"):
        (folder / "__init__.py").write_text("")
    # The shape of Dify 1.8's engine module: a GraphEngine, and no layers.
    (engine / "__init__.py").write_text("class GraphEngine:\n    def run(self):\n        yield 'ran'\n")
    script = tmp_path / "app.py"
    script.write_text(
        "import core.workflow.graph_engine as engine\n"
        "import core.workflow.graph_engine\n"
        "print(list(engine.GraphEngine().run()))\n"
    )
    result = run(
        ["python", str(script)], env={"PYTHONPATH": str(tmp_path), "OTEL_TRACES_EXPORTER": "none"}
    ).check()
    assert result.stdout.strip() == "['ran']"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("llmprobe: warning")]
    assert len(warnings) == 1, result.stderr
    assert "core.workflow.graph_engine" in warnings[0] and "not traced" in warnings[0]
