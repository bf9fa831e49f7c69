"""The vllm backend with the embedded model, and the openai backend against a real
`vllm serve`. Run in .venv-vllm: `make test-vllm` (pytest -m vllm).

One engine is shared by the module's tests (starting one takes 20 to 50 s on CPU); the
server test starts its own server process and kills its whole process group after.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.config import ModelConfig
from workbench.errors import ModelNotFoundError
from workbench.models.base import Sampling

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not HAVE_VLLM, reason="vllm is not installed here (make vllm-setup)"),
]

PROMPTS = [
    [{"role": "system", "content": "You write short Python functions."},
     {"role": "user", "content": f"Write a function that returns {task}."}]
    for task in ("the sum of a list", "the largest of three numbers", "a reversed string")
]
GREEDY = Sampling(temperature=0, max_new_tokens=24)
SERVER_START_LIMIT = 300  # seconds; a cold start on 2 busy cores has taken 90


@pytest.fixture(scope="module")
def model_dir() -> Path:
    from workbench.models.embedded import ensure_embedded_model

    return ensure_embedded_model()


@pytest.fixture(scope="module")
def generator(model_dir: Path) -> Iterator:
    from workbench.models.vllm import VLLMGenerator

    engine = VLLMGenerator(ModelConfig(backend="vllm", name="embedded", max_model_len=2048))
    yield engine
    engine.close()


def make_adapter(model_dir: Path, folder: Path, seed: int) -> Path:
    """A tiny random LoRA (what a distill run writes, minus the training)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("n", [1, 3])
def test_n_samples_for_each_of_several_chat_prompts(generator, n: int) -> None:
    results = generator.generate(PROMPTS, n, Sampling(temperature=0.9, max_new_tokens=24, seed=7))
    assert len(results) == len(PROMPTS)
    for completions in results:
        assert len(completions) == n
        assert all(c.text.strip() and 0 < c.tokens <= 24 for c in completions)
    if n > 1:
        # Sampled, not copied: a prompt's samples are not all the same text.
        assert any(len({c.text for c in completions}) > 1 for completions in results)


def test_greedy_is_deterministic_and_seeded_sampling_repeats(generator) -> None:
    first = generator.generate(PROMPTS, 2, GREEDY)
    second = generator.generate(PROMPTS, 2, GREEDY)
    assert [[c.text for c in row] for row in first] == [[c.text for c in row] for row in second]
    assert all(row[0].text == row[1].text for row in first)
    seeded = Sampling(temperature=0.9, max_new_tokens=16, seed=11)
    assert [[c.text for c in row] for row in generator.generate(PROMPTS, 2, seeded)] == [
        [c.text for c in row] for row in generator.generate(PROMPTS, 2, seeded)
    ]


def test_prompts_render_with_the_chat_template(generator) -> None:
    rendered = generator.tokenizer.decode(generator.render(PROMPTS[0]))
    assert "You write short Python functions." in rendered
    assert rendered.rstrip().endswith("assistant")  # the generation prompt is added
    assert generator.count_tokens(PROMPTS[0]) == len(generator.render(PROMPTS[0]))
    assert generator.context_length == 2048


def test_branches_sharing_a_long_prefix_hit_the_prefix_cache(generator) -> None:
    history = " ".join(f"Step {i}: the test failed with an AssertionError on line {i}." for i in range(40))
    branches = [
        [{"role": "system", "content": "You fix Python functions."},
         {"role": "user", "content": history},
         {"role": "user", "content": f"Branch {i}: try another fix."}]
        for i in range(4)
    ]
    assert generator.count_tokens(branches[0]) > 500
    before = generator.prefix_cache_counters()
    assert before is not None, "vLLM reported no prefix cache statistics"
    generator.generate(branches, 1, Sampling(temperature=0.7, max_new_tokens=8, seed=1))
    rate = generator.prefix_cache_hit_rate(since=before)
    # Three of the four branches reuse the first one's blocks of the shared history.
    assert rate is not None and rate > 0.5
    assert 0 < generator.prefix_cache_hit_rate() <= 1


def test_adapters_swap_without_restarting_the_engine(generator, model_dir, tmp_path) -> None:
    engine = generator.engine
    prompt = PROMPTS[:1]
    base = generator.generate(prompt, 1, GREEDY)[0][0].text

    generator.set_adapter(str(make_adapter(model_dir, tmp_path / "first", seed=1)))
    first_id = generator.adapter_id
    with_first = generator.generate(prompt, 1, GREEDY)[0][0].text
    assert with_first != base

    generator.set_adapter(str(make_adapter(model_dir, tmp_path / "second", seed=2)))
    assert generator.adapter_id not in (None, first_id)
    with_second = generator.generate(prompt, 1, GREEDY)[0][0].text
    assert with_second != with_first

    generator.set_adapter(str(tmp_path / "first"))  # a folder seen before keeps its id
    assert generator.adapter_id == first_id
    assert generator.generate(prompt, 1, GREEDY)[0][0].text == with_first

    generator.set_adapter(None)
    assert generator.generate(prompt, 1, GREEDY)[0][0].text == base
    assert generator.engine is engine


def test_a_folder_without_an_adapter_is_refused(generator, tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="adapter_config.json"):
        generator.set_adapter(str(tmp_path))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(model_dir: Path, tmp_path_factory) -> Iterator[str]:
    """`vllm serve` of the embedded model folder on a free local port, named `embedded`."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", "embedded",
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "2048", "--dtype", "bfloat16", "--enforce-eager",
        "--enable-prefix-caching",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    try:
        wait_until_ready(process, port, log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_group(process)


def wait_until_ready(process: subprocess.Popen, port: int, log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + SERVER_START_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vllm serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"vllm serve did not start within {SERVER_START_LIMIT} s:\n{log_path.read_text()[-3000:]}")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (API server, engine core, workers), wait a bounded
    time, then SIGKILL whatever of the group is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def test_openai_backend_against_a_real_vllm_server(served: str, generator) -> None:
    from workbench.models.openai import OpenAIGenerator

    client = OpenAIGenerator(ModelConfig(backend="openai", name="embedded", base_url=served,
                                         max_model_len=2048, timeout=120, max_retries=2,
                                         max_concurrency=2, api_key_env=""))
    try:
        results = client.generate(PROMPTS, 3, Sampling(temperature=0.9, max_new_tokens=24, seed=5))
        assert [len(row) for row in results] == [3, 3, 3]
        assert all(c.text.strip() and c.tokens > 0 for row in results for c in row)
        greedy = client.generate(PROMPTS[:1], 2, GREEDY)[0]
        assert greedy[0].text == greedy[1].text and greedy[0].finish_reason in ("stop", "length")
        # The embedded model's tokenizer is on this machine, so counts are exact.
        assert client.count_tokens(PROMPTS[0]) == generator.count_tokens(PROMPTS[0])
    finally:
        client.close()

