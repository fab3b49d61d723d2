"""The API key the DashScope tests use, to check it never reaches a span."""

SECRET = "sk-llmprobe-dashscope-SECRET-41b7"
