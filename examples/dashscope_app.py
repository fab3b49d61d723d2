"""The Flask service of Alibaba Cloud's DashScope quick start, traced by llmprobe.

    instrument python examples/dashscope_app.py        # then: curl -X POST localhost:5000/chat -d '{"q":"hi"}'

Set DASHSCOPE_API_KEY (and DASHSCOPE_HTTP_BASE_URL to reach a local fake server offline).
"""

import os

import dashscope
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/chat")
def chat():
    question = (request.get_json(silent=True) or {}).get("q", "Who are you?")
    response = dashscope.Generation.call(
        model="qwen-plus",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": question},
        ],
        result_format="message",
    )
    if response.status_code != 200:
        return jsonify({"error": response.code, "message": response.message}), 502
    return jsonify({"answer": response.output.choices[0].message.content})


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "5000")))
