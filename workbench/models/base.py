"""The Generator protocol: chat prompts in, `n` completions per prompt out.

Every backend (hf, vllm, openai, scripted) implements it, and every backend's
text is made storable the same way (`workbench.storable_text.clean_text`) before an
environment reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": "..."}."""

ChatPrompt = list[Message]


@dataclass(frozen=True)
class Sampling:
    """How to sample. `temperature = 0` means greedy decoding."""

    temperature: float = 0.7
    max_new_tokens: int = 256
    top_p: float = 0.95
    seed: int | None = None
    min_new_tokens: int = 0
    """Generate at least this many tokens (benchmarks use it to compare equal work)."""
    row_seeds: tuple[int, ...] | None = None
    """One seed per prompt: each prompt's samples come from a random stream of its own, so
    the same prompt with the same seed gets the same answer whatever else shares its batch
    (evaluation seeds each episode this way). Backends that cannot do it use `seed`."""


@dataclass(frozen=True)
class Completion:
    """One sampled answer: its text and how many tokens it took."""

    text: str
    tokens: int = 0
    finish_reason: str = "stop"


@runtime_checkable
class Generator(Protocol):
    """A chat model that completes many prompts at once."""

    name: str
    """The model's name as the user gave it (recorded in provenance)."""

    context_length: int
    """How many tokens a prompt plus its answer may hold."""

    def generate(
        self,
        prompts: list[ChatPrompt],
        n: int,
        sampling: Sampling,
        *,
        tags: list[str] | None = None,
    ) -> list[list[Completion]]:
        """Return, for each prompt, `n` completions.

        `tags` names each prompt's task; only the scripted backend reads it, to
        replay a recorded action sequence per task.
        """
        ...

    def count_tokens(self, prompt: ChatPrompt) -> int:
        """Tokens the prompt takes once rendered with the chat template."""
        ...

    def close(self) -> None:
        """Release the engine, threads or server the backend holds."""
        ...


class ChatTemplateTokens:
    """`render` and `count_tokens` for the backends that hold the model's own tokenizer
    (hf, vllm): both render a prompt the same way, so both see the same tokens."""

    tokenizer: Any

    def render(self, prompt: ChatPrompt) -> list[int]:
        """Token ids of `prompt` through the model's chat template, ready for an answer."""
        return render_chat(self.tokenizer, prompt)

    def count_tokens(self, prompt: ChatPrompt) -> int:
        """Tokens the prompt takes once rendered with the chat template."""
        return len(self.render(prompt))


def render_chat(tokenizer, prompt: ChatPrompt) -> list[int]:
    """Token ids of a chat prompt through the model's chat template, ready for an answer.

    transformers 5 returns a BatchEncoding where 4.x returned a list; both are accepted.
    """
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return list(ids)


def greedy_once(
    generate, prompts: list[ChatPrompt], n: int, sampling: Sampling, tags: list[str] | None
) -> list[list[Completion]] | None:
    """Greedy decoding gives the same answer n times: decode once and copy it. None when
    sampling is not greedy or n is 1 (the backend decodes as usual)."""
    if sampling.temperature > 0 or n <= 1:
        return None
    return [samples * n for samples in generate(prompts, 1, sampling, tags=tags)]
