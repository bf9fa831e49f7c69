"""The `openai` backend: any OpenAI-compatible chat completions server (`vllm serve`, a
cluster behind a gateway, a hosted API).

Each prompt is one request asking for `n` choices; a server that returns fewer (some cap
`n`, some ignore it) gets more requests until the prompt has `n`. Requests run on a pool of
`max_concurrency` threads sharing one httpx client. A 429, a 5xx, a timeout or a broken
connection is retried with exponential backoff and full jitter (Retry-After is honoured),
up to `max_retries` times; then the run stops with one line saying what the server did.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from workbench.config import ModelConfig
from workbench.errors import LeafeError
from workbench.models.base import ChatPrompt, Completion, Sampling, greedy_once

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text and code with BPE tokenizers
MAX_EMPTY_ROUNDS = 3  # a server that keeps answering with no choices is broken, not slow


class OpenAIServerError(LeafeError):
    """The server could not be reached, or refused a request, after the allowed retries."""


class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible server; see the module docstring."""

    backoff_base = 0.5
    """Seconds before the first retry; doubled each time, with full jitter."""
    backoff_cap = 30.0
    """Longest wait between two attempts, Retry-After included."""

    def __init__(self, config: ModelConfig) -> None:
        if not config.base_url:
            raise OpenAIServerError("backend 'openai' needs model.base_url (e.g. http://127.0.0.1:8000/v1)")
        self.config = config
        self.name = config.name
        self.context_length = config.max_model_len
        self.endpoint = config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        workers = max(1, config.max_concurrency)
        self.client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout, connect=min(10.0, config.timeout)),
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        )
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-request")
        self.max_choices: int | None = None  # learned when the server refuses n > 1
        self._tokenizer: Any = None
        self._tokenizer_loaded = False
        self._tokenizer_lock = threading.Lock()

    # -- generation --------------------------------------------------------------------

    def generate(
        self,
        prompts: list[ChatPrompt],
        n: int,
        sampling: Sampling,
        *,
        tags: list[str] | None = None,
    ) -> list[list[Completion]]:
        copies = greedy_once(self.generate, prompts, n, sampling, tags)
        if copies is not None:
            return copies
        futures = [
            self.pool.submit(self.complete_prompt, index, prompt, n, sampling)
            for index, prompt in enumerate(prompts)
        ]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()  # queued prompts are dropped; running ones end on their own
            raise

    def complete_prompt(self, index: int, prompt: ChatPrompt, n: int, sampling: Sampling) -> list[Completion]:
        """Request until the prompt has `n` completions."""
        completions: list[Completion] = []
        empty_rounds = 0
        round_number = 0
        while len(completions) < n:
            wanted = n - len(completions)
            if self.max_choices is not None:
                wanted = min(wanted, self.max_choices)
            seed = None
            if sampling.seed is not None:
                # Distinct per prompt and per follow-up request, so extra requests do not
                # repeat the samples already drawn.
                seed = sampling.seed + index + round_number * 100_003
            got = self.request(prompt, wanted, sampling, seed)
            round_number += 1
            if not got:
                empty_rounds += 1
                if empty_rounds >= MAX_EMPTY_ROUNDS:
                    raise OpenAIServerError(
                        f"openai backend: {self.endpoint} answered {MAX_EMPTY_ROUNDS} times with no choices"
                    )
                continue
            completions.extend(got[:wanted])
        return completions

    def payload(self, prompt: ChatPrompt, n: int, sampling: Sampling, seed: int | None) -> dict:
        greedy = sampling.temperature <= 0
        body: dict[str, Any] = {
            "model": self.name,
            "messages": prompt,
            "max_tokens": sampling.max_new_tokens,
            "temperature": 0.0 if greedy else sampling.temperature,
            "top_p": 1.0 if greedy else sampling.top_p,
        }
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        return body

    def request(self, prompt: ChatPrompt, n: int, sampling: Sampling, seed: int | None) -> list[Completion]:
        """One chat completion request with retries; returns the choices it got."""
        body = self.payload(prompt, n, sampling, seed)
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.client.post(self.endpoint, json=body)
            except httpx.TimeoutException:
                if last:
                    raise OpenAIServerError(
                        f"openai backend: {self.endpoint} did not answer within {self.config.timeout:g} s "
                        f"({attempts} attempts)"
                    ) from None
                self.wait(attempt, None)
                continue
            except httpx.TransportError as error:
                if last:
                    raise OpenAIServerError(
                        f"openai backend: cannot reach {self.endpoint} after {attempts} attempts "
                        f"({type(error).__name__}: {one_line(str(error))})"
                    ) from None
                self.wait(attempt, None)
                continue
            if response.status_code == 200:
                return self.parse(response)
            if response.status_code == 400 and n > 1 and mentions_n(response.text):
                # This server takes one choice per request: remember it and ask again.
                self.max_choices = 1
                body.pop("n", None)
                return self.request(prompt, 1, sampling, seed)
            if response.status_code not in RETRYABLE_STATUS or last:
                raise OpenAIServerError(self.refusal(response, attempt + 1))
            self.wait(attempt, response.headers.get("retry-after"))
        raise AssertionError("unreachable")  # the loop always returns or raises

    def wait(self, attempt: int, retry_after: str | None) -> None:
        delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))
        if retry_after:
            # An HTTP date is not parsed: the backoff is as good a guess.
            with contextlib.suppress(ValueError):
                delay = max(delay, min(self.backoff_cap, float(retry_after)))
        time.sleep(delay)

    def refusal(self, response: httpx.Response, attempts: int) -> str:
        status = response.status_code
        detail = one_line(error_message(response))
        hint = ""
        if status in (401, 403):
            hint = f" (check the key in ${self.config.api_key_env})"
        elif status == 404:
            hint = f" (is {self.name!r} the served model name, and {self.config.base_url} the /v1 URL?)"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return f"openai backend: {self.endpoint} answered {status}{tries}: {detail}{hint}"

    def parse(self, response: httpx.Response) -> list[Completion]:
        try:
            data = response.json()
            choices = data.get("choices") or []
            texts = [((choice.get("message") or {}).get("content") or "") for choice in choices]
            reasons = [choice.get("finish_reason") for choice in choices]
        except (ValueError, AttributeError, TypeError):
            raise OpenAIServerError(
                f"openai backend: {self.endpoint} sent something that is not a chat completion: "
                f"{one_line(response.text)}"
            ) from None
        usage = data.get("usage") or {}
        counts = split_usage(texts, usage.get("completion_tokens"))
        return [
            Completion(text=text, tokens=count, finish_reason="length" if reason == "length" else "stop")
            for text, count, reason in zip(texts, counts, reasons, strict=True)
        ]

    # -- tokens ------------------------------------------------------------------------

    def tokenizer(self) -> Any:
        """The model's tokenizer when it is on this machine (a folder, the embedded model, a
        cached hub id); None otherwise. Looked up once."""
        with self._tokenizer_lock:
            if not self._tokenizer_loaded:
                self._tokenizer_loaded = True
                self._tokenizer = local_tokenizer(self.name)
            return self._tokenizer

    def count_tokens(self, prompt: ChatPrompt) -> int:
        tokenizer = self.tokenizer()
        if tokenizer is not None:
            try:
                ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                return len(ids)
            except Exception:  # a tokenizer without a chat template: estimate instead
                pass
        # Role markers cost a few tokens per message on every chat template.
        characters = sum(len(message.get("content", "")) for message in prompt)
        return characters // CHARS_PER_TOKEN + 4 * len(prompt) + 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def local_tokenizer(name: str) -> Any:
    """A tokenizer for `name` without converting, downloading or loading any weights."""
    try:
        from workbench.models.embedded import EMBEDDED_NAME, embedded_model_dir

        if name == EMBEDDED_NAME:
            folder = embedded_model_dir()
            if not (folder / "tokenizer_config.json").is_file():
                return None
            source = str(folder)
        else:
            from workbench.models.sources import resolve_model_source

            source = resolve_model_source(name)
        if not Path(source).is_dir() and "/" not in source:
            return None
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source, local_files_only=True)
    except Exception:  # no transformers, no such model here, a broken folder: estimate
        return None


def split_usage(texts: list[str], completion_tokens: Any) -> list[int]:
    """Per-choice token counts: the server reports one total, shared out by text length."""
    if not isinstance(completion_tokens, int) or completion_tokens < 0:
        return [max(1, len(text) // CHARS_PER_TOKEN) if text else 0 for text in texts]
    total_chars = sum(len(text) for text in texts)
    if total_chars == 0:
        return [completion_tokens // max(1, len(texts))] * len(texts)
    counts = [completion_tokens * len(text) // total_chars for text in texts]
    if counts:
        counts[-1] += completion_tokens - sum(counts)  # rounding leftovers, so they add up
    return counts


def mentions_n(text: str) -> bool:
    lowered = text.lower()
    return '"n"' in lowered or "'n'" in lowered or " n " in lowered or "n must" in lowered


def error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(data)


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
