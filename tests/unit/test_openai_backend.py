"""The openai backend against a tiny scripted HTTP server on 127.0.0.1: retries and backoff
on 429 and 5xx, `n` split over several requests, timeouts, the concurrency limit, auth."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workbench.config import ModelConfig
from workbench.errors import LeafeError
from workbench.models.base import Sampling
from workbench.models.openai import OpenAIGenerator

PROMPT = [{"role": "user", "content": "Write add(a, b)."}]
SAMPLING = Sampling(temperature=0.7, max_new_tokens=16, seed=1)

Reply = tuple[int, dict, dict]  # status, JSON body, headers


def chat_reply(n: int, text: str = "def add(a, b): return a + b") -> Reply:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": f"{text} #{i}"}, "finish_reason": "stop"}
        for i in range(n)
    ]
    return 200, {"choices": choices, "usage": {"completion_tokens": 5 * n}}, {}


class ScriptedServer:
    """Answers each POST with `respond(request_body)`; records bodies, headers and the most
    requests it ever had in flight at once."""

    def __init__(self, respond: Callable[[dict], Reply]) -> None:
        self.respond = respond
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                try:
                    status, payload, headers = server.respond(body)
                finally:
                    # Out of flight before the answer goes out: once the client has read it, it
                    # may send its next request before this thread would get to a later decrement.
                    with server.lock:
                        server.in_flight -= 1
                try:
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[dict], Reply]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(respond: Callable[[dict], Reply]) -> ScriptedServer:
        servers.append(ScriptedServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def make(url: str, **overrides: object) -> OpenAIGenerator:
    settings = {"backend": "openai", "name": "served-model", "base_url": url, "max_retries": 3,
                "timeout": 5.0, "max_concurrency": 4, "api_key_env": "LEAFE_TEST_KEY"}
    settings.update(overrides)
    generator = OpenAIGenerator(ModelConfig(**settings))
    generator.backoff_base = 0.01  # keep the tests fast; the doubling is what is tested
    return generator


def sequence(*replies: Reply) -> Callable[[dict], Reply]:
    """Answer with the given replies in order, then keep repeating the last one."""
    queue = list(replies)
    lock = threading.Lock()

    def respond(body: dict) -> Reply:
        with lock:
            return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


def test_a_429_is_retried_and_the_answer_used(serve) -> None:
    server = serve(sequence((429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}), chat_reply(1)))
    generator = make(server.url)
    [[completion]] = generator.generate([PROMPT], 1, SAMPLING)
    assert completion.text.startswith("def add")
    assert completion.tokens == 5
    assert len(server.bodies) == 2
    assert server.bodies[0]["model"] == "served-model"
    assert server.bodies[0]["messages"] == PROMPT
    generator.close()


def test_retry_after_is_honoured(serve) -> None:
    server = serve(sequence((503, {}, {"Retry-After": "0.4"}), chat_reply(1)))
    generator = make(server.url)
    started = time.monotonic()
    generator.generate([PROMPT], 1, SAMPLING)
    assert time.monotonic() - started >= 0.4
    assert len(server.bodies) == 2
    generator.close()


def test_persistent_500s_end_in_one_line_error_after_the_allowed_retries(serve) -> None:
    server = serve(lambda body: (500, {"error": {"message": "engine crashed"}}, {}))
    generator = make(server.url, max_retries=3)
    with pytest.raises(LeafeError) as caught:
        generator.generate([PROMPT], 1, SAMPLING)
    message = str(caught.value)
    assert "\n" not in message
    assert "500" in message and "engine crashed" in message and "4 attempts" in message
    assert len(server.bodies) == 4  # the first try and three retries
    generator.close()


def test_backoff_grows_between_retries(serve, monkeypatch) -> None:
    server = serve(lambda body: (502, {}, {}))
    generator = make(server.url, max_retries=4)
    generator.backoff_base = 1.0
    waits: list[float] = []
    monkeypatch.setattr("workbench.models.openai.random.uniform", lambda low, high: high)
    monkeypatch.setattr("workbench.models.openai.time.sleep", waits.append)
    with pytest.raises(LeafeError):
        generator.generate([PROMPT], 1, SAMPLING)
    assert waits == [1.0, 2.0, 4.0, 8.0]
    generator.close()


def test_a_client_error_is_not_retried(serve) -> None:
    server = serve(lambda body: (404, {"error": {"message": "model not found"}}, {}))
    generator = make(server.url)
    with pytest.raises(LeafeError, match="404.*model not found.*served model name"):
        generator.generate([PROMPT], 1, SAMPLING)
    assert len(server.bodies) == 1
    generator.close()


def test_n_is_sent_and_a_short_answer_is_topped_up(serve) -> None:
    # This server never returns more than two choices, whatever n asks for.
    server = serve(lambda body: chat_reply(min(2, body.get("n", 1))))
    generator = make(server.url)
    [completions] = generator.generate([PROMPT], 5, SAMPLING)
    assert len(completions) == 5
    assert [body.get("n", 1) for body in server.bodies] == [5, 3, 1]
    seeds = [body["seed"] for body in server.bodies]
    assert len(set(seeds)) == 3  # follow-up requests do not redraw the same samples
    generator.close()


def test_a_server_that_refuses_n_gets_one_request_per_sample(serve) -> None:
    def respond(body: dict) -> Reply:
        if body.get("n", 1) > 1:
            return 400, {"error": {"message": "'n' must be 1 for this model"}}, {}
        return chat_reply(1)

    server = serve(respond)
    generator = make(server.url)
    [completions] = generator.generate([PROMPT], 3, SAMPLING)
    assert len(completions) == 3
    assert [body.get("n", 1) for body in server.bodies] == [3, 1, 1, 1]
    generator.close()


def test_greedy_asks_once_and_copies(serve) -> None:
    server = serve(lambda body: chat_reply(1))
    generator = make(server.url)
    [completions] = generator.generate([PROMPT], 3, Sampling(temperature=0, max_new_tokens=8))
    assert len(completions) == 3 and len({c.text for c in completions}) == 1
    assert len(server.bodies) == 1 and server.bodies[0]["temperature"] == 0.0
    generator.close()


def test_answers_come_back_in_prompt_order(serve) -> None:
    def respond(body: dict) -> Reply:
        question = body["messages"][-1]["content"]
        time.sleep(0.05 if question.endswith("0") else 0.0)  # the first prompt answers last
        return chat_reply(1, text=question)

    server = serve(respond)
    generator = make(server.url)
    prompts = [[{"role": "user", "content": f"prompt {i}"}] for i in range(6)]
    results = generator.generate(prompts, 1, SAMPLING)
    assert [result[0].text.split(" #")[0] for result in results] == [f"prompt {i}" for i in range(6)]
    generator.close()


def test_requests_in_flight_never_exceed_max_concurrency(serve) -> None:
    def respond(body: dict) -> Reply:
        time.sleep(0.1)
        return chat_reply(1)

    server = serve(respond)
    generator = make(server.url, max_concurrency=2)
    generator.generate([PROMPT] * 8, 1, SAMPLING)
    assert len(server.bodies) == 8
    assert server.most_in_flight == 2
    generator.close()


def test_a_slow_server_times_out_with_a_clear_error(serve) -> None:
    def respond(body: dict) -> Reply:
        time.sleep(1.5)
        return chat_reply(1)

    server = serve(respond)
    generator = make(server.url, timeout=0.3, max_retries=1)
    started = time.monotonic()
    with pytest.raises(LeafeError, match="did not answer within 0.3 s"):
        generator.generate([PROMPT], 1, SAMPLING)
    assert time.monotonic() - started < 3
    assert len(server.bodies) == 2
    generator.close()


def test_a_slow_answer_within_the_timeout_is_fine(serve) -> None:
    def respond(body: dict) -> Reply:
        time.sleep(0.3)
        return chat_reply(1)

    server = serve(respond)
    generator = make(server.url, timeout=2.0)
    [[completion]] = generator.generate([PROMPT], 1, SAMPLING)
    assert completion.text.startswith("def add")
    generator.close()


def test_an_unreachable_server_gives_one_line_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens
    generator = make(f"http://127.0.0.1:{port}/v1", max_retries=2)
    started = time.monotonic()
    with pytest.raises(LeafeError) as caught:
        generator.generate([PROMPT], 1, SAMPLING)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot reach" in message and f"127.0.0.1:{port}" in message and "3 attempts" in message
    generator.close()


def test_the_key_is_sent_only_when_its_variable_is_set(serve, monkeypatch) -> None:
    server = serve(lambda body: chat_reply(1))
    monkeypatch.delenv("LEAFE_TEST_KEY", raising=False)
    generator = make(server.url)
    generator.generate([PROMPT], 1, SAMPLING)
    generator.close()
    monkeypatch.setenv("LEAFE_TEST_KEY", "sk-test")
    generator = make(server.url)
    generator.generate([PROMPT], 1, SAMPLING)
    generator.close()
    auth = [{k.lower(): v for k, v in headers.items()}.get("authorization") for headers in server.headers]
    assert auth == [None, "Bearer sk-test"]


def test_tokens_are_estimated_without_a_local_tokenizer() -> None:
    generator = make("http://127.0.0.1:9/v1", name="some-served-model")
    long_prompt = [{"role": "user", "content": "x" * 400}]
    assert 100 <= generator.count_tokens(long_prompt) <= 110
    assert generator.context_length == ModelConfig().max_model_len
    generator.close()
