"""`zhisuan service up | status | down` against `zhisuan server` as a real process: a service deployed from
its YAML, its replica ready where the table says, called through the server's OpenAI-compatible
endpoint, stopped; a bad spec refused naming the field."""

import time

import pytest
from typer.testing import CliRunner

from tests.control.test_services import script  # noqa: F401 (fixture)
from tests.e2e.test_server import server  # noqa: F401 (fixture)
from zhisuan.cli.main import app


def test_service_up_status_down(server, tmp_path, script):  # noqa: F811
    env = {"ZHISUAN_URL": server.url, "ZHISUAN_TOKEN": server.token("acme")}
    cli = CliRunner()
    spec = tmp_path / "chat.yaml"
    spec.write_text(f"""name: chat
tenant: acme
kind: service
resources: {{accelerators: a100:1}}
service: {{model: echo, ready: /health, replicas: {{min: 1, max: 2}}}}
run: exec python3 {script} --port $PORT --model echo
""")
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text().replace("min: 1, max: 2", "min: 3, max: 2"))
    res = cli.invoke(app, ["service", "up", str(bad)], env=env)
    assert res.exit_code == 2 and "service.replicas" in res.output
    res = cli.invoke(app, ["service", "up", str(spec)], env=env)
    assert res.exit_code == 0 and "serves echo" in res.output, res.output
    sid = res.output.split()[1]
    end = time.time() + 60
    while time.time() < end:
        res = cli.invoke(app, ["service", "status"], env=env)
        if "here 1" in res.output:
            break
        time.sleep(0.3)
    assert res.exit_code == 0 and sid in res.output and "here 1" in res.output, res.output
    acme = server.client("acme")
    answer = acme.post("/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user",
                                                                                     "content": "via the cli"}]})
    assert answer.status_code == 200 and "via the cli" in answer.text
    res = cli.invoke(app, ["service", "down", sid], env=env)
    assert res.exit_code == 0 and "stopped" in res.output
    res = cli.invoke(app, ["service", "down", "s-nosuch"], env=env)
    assert res.exit_code != 0 and "404" in res.output


def test_the_openai_sdk_calls_a_deployed_service_through_the_server(server, tmp_path, script):  # noqa: F811
    """The official OpenAI Python client, pointed at the server: models, a completion, a stream, embeddings,
    and its own exception types for an unknown model and a bad key."""
    import openai

    acme = server.client("acme")
    made = acme.post("/v1/services", content=f"""name: chat
tenant: acme
kind: service
resources: {{accelerators: a100:1}}
service: {{model: echo, ready: /health, replicas: {{min: 1, max: 1}}}}
run: exec python3 {script} --port $PORT --model echo
""")
    assert made.status_code == 201
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.token("acme"), max_retries=0, timeout=10)
    end = time.time() + 60
    while time.time() < end:
        try:
            answer = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "via sdk"}])
            break
        except openai.APIStatusError as e:
            assert e.status_code in (503, 404)  # no replica ready yet
            time.sleep(0.3)
    assert answer.choices[0].message.content == "via sdk" and answer.usage.completion_tokens == 2
    assert [m.id for m in client.models.list()] == ["echo"]
    pieces = [c.choices[0].delta.content for c in client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "one two three"}], stream=True) if c.choices]
    assert "".join(p or "" for p in pieces).split() == ["one", "two", "three"]
    vectors = client.embeddings.create(model="echo", input="hello there")
    assert len(vectors.data) == 1 and vectors.usage.prompt_tokens == 2
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    bad = openai.OpenAI(base_url=f"{server.url}/v1", api_key="zs_wrong", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    acme.delete(f"/v1/services/{made.json()['id']}")
