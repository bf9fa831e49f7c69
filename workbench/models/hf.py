"""The `hf` backend: transformers generate over many chat prompts at once, `n` samples each.

Prompts are rendered with the model's chat template, left-padded and decoded together in
chunks of `model.batch_size` sequences. `temperature = 0` is greedy. A LoRA adapter
(peft), or a full fine-tune's weights, can be applied at load time or swapped later with
`set_adapter`.
"""

from __future__ import annotations

import os
import threading

from workbench.config import ModelConfig
from workbench.errors import ModelNotFoundError
from workbench.models.base import ChatPrompt, ChatTemplateTokens, Completion, Sampling, greedy_once
from workbench.models.sources import resolve_model_source

CPU_CONTEXT_CAP = 4096  # longer contexts are possible but slow to the point of uselessness on CPU


def quiet_transformers() -> None:
    """transformers 5 prints load progress bars on every load; a batch run has its own."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def torch_dtype(name: str):
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(
        name, "auto"
    )


def load_model_and_tokenizer(config: ModelConfig):
    """Load a causal LM and its tokenizer from `config.name` (embedded, folder or hub id)."""
    quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model_source(config.name, config.allow_download)
    if source == "embedded":
        from workbench.models.embedded import ensure_embedded_model

        source = str(ensure_embedded_model())
    local_only = not config.allow_download
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype(config.dtype), local_files_only=local_only
        )
    except OSError as error:
        raise ModelNotFoundError(f"model {config.name!r}: cannot load from {source}: {error}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.to(resolve_device(config.device))
    model.eval()
    return model, tokenizer, source


def load_full_model(path: str, config: ModelConfig):
    """A full fine-tune's weights, in the policy's dtype and device, ready to generate."""
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(config.dtype), local_files_only=True)
    except OSError as error:
        raise ModelNotFoundError(f"adapter {path!r}: cannot load its full weights: {error}") from None
    model.to(resolve_device(config.device))
    model.eval()
    return model


def cache_argument() -> str:
    """generate()'s name for a ready KV cache: `cache` from transformers 5.24 on."""
    from transformers.generation import utils

    return "cache" if "cache" in getattr(utils, "ALL_CACHE_NAMES", ()) else "past_key_values"


class HFGenerator(ChatTemplateTokens):
    """Chat completions with transformers; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.name = config.name
        self.model, self.tokenizer, self.source = load_model_and_tokenizer(config)
        self.base_model = self.model
        self.adapter_path: str | None = None
        self.adapter_kind: str | None = None  # "lora" | "full" | None (the base weights)
        self.prefix_reuse = True  # benchmarks/backtrack.py turns it off to measure the gain
        own_limit = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        if config.context_length:
            self.context_length = min(config.context_length, own_limit)
        elif self.model.device.type == "cpu":
            self.context_length = min(own_limit, CPU_CONTEXT_CAP)
        else:
            self.context_length = own_limit
        # generate() is not re-entrant; the TUI may call from several workers.
        self.lock = threading.Lock()
        if config.adapter:
            self.set_adapter(config.adapter)

    # -- adapters ----------------------------------------------------------------------

    def set_adapter(self, path: str | None) -> None:
        """Apply the adapter at `path`, or go back to the base weights with None.

        A LoRA adapter (PEFT format) is applied on the base weights; a full fine-tune (a
        whole model folder, see workbench/adapters.py) is loaded as its own weights in
        place of the base, which stays loaded for `None`."""
        from workbench.adapters import is_full_model_folder, is_lora_folder

        with self.lock:
            if self.model is not self.base_model and self.adapter_kind == "lora":
                # Unload the previous adapter so adapters never stack.
                self.base_model = self.model.unload()
            self.model = self.base_model
            self.adapter_path, self.adapter_kind = None, None
            if path is None:
                return
            if is_full_model_folder(path):
                self.model = load_full_model(path, self.config)
                self.adapter_path, self.adapter_kind = str(path), "full"
                return
            if not is_lora_folder(path):
                raise ModelNotFoundError(f"adapter {path!r}: no adapter_config.json there")
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.base_model, path, is_trainable=False)
            self.model.eval()
            self.adapter_path, self.adapter_kind = str(path), "lora"

    # -- generation --------------------------------------------------------------------

    def generate(
        self,
        prompts: list[ChatPrompt],
        n: int,
        sampling: Sampling,
        *,
        tags: list[str] | None = None,
    ) -> list[list[Completion]]:
        import torch

        copies = greedy_once(self.generate, prompts, n, sampling, tags)
        if copies is not None:
            return copies
        encoded = [self.render(prompt) for prompt in prompts]
        results: list[list[Completion]] = [[] for _ in prompts]
        prompts_per_chunk = max(1, self.config.batch_size // max(1, n))
        with self.lock, torch.inference_mode():
            for start in range(0, len(encoded), prompts_per_chunk):
                chunk = encoded[start : start + prompts_per_chunk]
                seed = None if sampling.seed is None else sampling.seed + start
                for offset, completions in enumerate(self._generate_chunk(chunk, n, sampling, seed)):
                    results[start + offset] = completions
        return results

    def _generate_chunk(
        self, chunk: list[list[int]], n: int, sampling: Sampling, seed: int | None
    ) -> list[list[Completion]]:
        import torch

        width = max(len(ids) for ids in chunk)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk])
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk])
        device = self.model.device
        max_new = max(1, min(sampling.max_new_tokens, self.context_length - width))
        greedy = sampling.temperature <= 0
        if seed is not None:
            torch.manual_seed(seed)
        input_ids, attention = input_ids.to(device), attention.to(device)
        extra = {}
        if n > 1 and self.prefix_reuse and width > 1:
            # Encode each shared history once and copy its KV cache to the n samples;
            # generate() would otherwise expand the prompt n times before the prefill.
            extra[cache_argument()] = self.prefill(input_ids[:, :-1], attention[:, :-1], n)
            input_ids = input_ids.repeat_interleave(n, dim=0)
            attention = attention.repeat_interleave(n, dim=0)
            returns = 1
        else:
            returns = n
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_new,
            min_new_tokens=min(sampling.min_new_tokens, max_new) or None,
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p,
            top_k=None,
            num_return_sequences=returns,
            pad_token_id=pad,
            **extra,
        )
        new_tokens = output[:, width:]
        eos_ids = self.eos_ids()
        completions: list[list[Completion]] = []
        for index in range(len(chunk)):
            samples = []
            for row in new_tokens[index * n : (index + 1) * n].tolist():
                length = len(row)
                finish = "length"
                for position, token in enumerate(row):
                    if token in eos_ids:
                        length, finish = position, "stop"
                        break
                text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
                samples.append(Completion(text=text, tokens=length, finish_reason=finish))
            completions.append(samples)
        return completions

    def prefill(self, input_ids, attention, copies: int):
        """The KV cache of `input_ids` (left-padded), repeated `copies` times per row."""
        positions = (attention.long().cumsum(-1) - 1).clamp(min=0)
        output = self.model(
            input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True
        )
        cache = getattr(output, "cache", None) or output.past_key_values
        cache.batch_repeat_interleave(copies)
        return cache

    def eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        if ids is None:
            ids = self.tokenizer.eos_token_id
        ids = ids if isinstance(ids, list) else [ids]
        return {int(i) for i in ids if i is not None} | {int(self.tokenizer.pad_token_id)}

    def close(self) -> None:
        self.model = self.base_model = None
