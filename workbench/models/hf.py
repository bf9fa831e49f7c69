"""The `hf` backend: transformers generate over many chat prompts at once, `n` samples each.

Prompts are rendered with the model's chat template, left-padded and decoded together in
chunks of `model.batch_size` sequences. `temperature = 0` is greedy. A LoRA adapter
(peft), or a full fine-tune's weights, can be applied at load time or swapped later with
`set_adapter`.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from workbench.config import ModelConfig
from workbench.errors import Cancelled, ModelNotFoundError
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

    def __init__(self, config: ModelConfig, *, loaded: tuple | None = None) -> None:
        self.config = config
        self.name = config.name
        # `loaded`: (model, tokenizer, source) already in memory (see policy_copy).
        self.model, self.tokenizer, self.source = loaded or load_model_and_tokenizer(config)
        self.base_model = self.model
        self.adapter_path: str | None = None
        self.adapter_kind: str | None = None  # "lora" | "full" | "merged" (policy_copy) | None (the base weights)
        self.prefix_reuse = True  # benchmarks/backtrack.py turns it off to measure the gain
        # Seeded rows with the same prompt are encoded once; evaluation's sequential
        # baseline turns it off to measure what it saves.
        self.share_prompts = True
        own_limit = int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)
        if config.context_length:
            self.context_length = min(config.context_length, own_limit)
        elif self.model.device.type == "cpu":
            self.context_length = min(own_limit, CPU_CONTEXT_CAP)
        else:
            self.context_length = own_limit
        # generate() is not re-entrant; the TUI may call from several workers.
        self.lock = threading.Lock()
        # The run's cancel flag (StageContext.generator sets it): a stop asked for while a
        # batch decodes ends the decode at its next token instead of after max_new_tokens
        # rows of a slow CPU, and the call raises Cancelled, so no caller stores a cut answer.
        self.stop_event: threading.Event | None = None
        if config.adapter:
            self.set_adapter(config.adapter)

    # -- adapters ----------------------------------------------------------------------

    def set_adapter(self, path: str | None) -> None:
        """Apply the adapter at `path`, or go back to the base weights with None.

        A LoRA adapter (PEFT format) is applied on the base weights; a full fine-tune (a
        whole model folder, see workbench/distill/adapters.py) is loaded as its own weights in
        place of the base, which stays loaded for `None`."""
        from workbench.distill.adapters import is_full_model_folder, is_lora_folder

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

    def policy_copy(self, path: str) -> HFGenerator:
        """A generator of its own for the policy at `path`, to play beside this one: a LoRA
        adapter merged into a copy of this generator's base weights (no adapter layers left
        to run at every step), or a full fine-tune's own weights. Call it on a generator
        with no adapter applied: peft changes the base model's layers in place."""
        import copy

        from workbench.distill.adapters import is_full_model_folder, is_lora_folder

        if is_full_model_folder(path):
            model = load_full_model(path, self.config)
        elif is_lora_folder(path):
            from peft import PeftModel

            with self.lock:
                model = PeftModel.from_pretrained(copy.deepcopy(self.base_model), path).merge_and_unload()
            model.eval()
        else:
            raise ModelNotFoundError(f"adapter {path!r}: no adapter_config.json there")
        twin = HFGenerator(dataclasses.replace(self.config, adapter=""), loaded=(model, self.tokenizer, self.source))
        twin.adapter_path = str(path)
        twin.adapter_kind = "merged"
        twin.share_prompts = self.share_prompts
        twin.stop_event = self.stop_event
        return twin

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
        if sampling.row_seeds is not None:
            return self._generate_seeded_rows(encoded, n, sampling)
        results: list[list[Completion]] = [[] for _ in prompts]
        prompts_per_chunk = max(1, self.config.batch_size // max(1, n))
        with self.lock, torch.inference_mode():
            for start in range(0, len(encoded), prompts_per_chunk):
                chunk = encoded[start : start + prompts_per_chunk]
                seed = None if sampling.seed is None else sampling.seed + start
                for offset, completions in enumerate(self._generate_chunk(chunk, n, sampling, seed)):
                    results[start + offset] = completions
        return results

    def _generate_seeded_rows(self, encoded: list[list[int]], n: int, sampling: Sampling) -> list[list[Completion]]:
        """Each prompt sampled from its own seed (`Sampling.row_seeds`); rows with the same
        prompt share one encoding when `share_prompts` is on (workbench/models/seeded_rows.py)."""
        import torch

        from workbench.models.seeded_rows import plan_chunks, sample_seed

        seeds = list(sampling.row_seeds or ())
        if len(seeds) != len(encoded):
            raise ValueError(f"row_seeds: {len(seeds)} seeds for {len(encoded)} prompts")
        rows = [ids for ids in encoded for _ in range(n)]
        row_seeds = [sample_seed(seed, sample) for seed in seeds for sample in range(n)]
        if self.share_prompts:
            chunks = plan_chunks(rows, self.config.batch_size)
        else:  # every row encoded on its own, in the caller's order (the baseline to measure against)
            chunks = [
                _unshared_chunk(rows, range(start, min(start + self.config.batch_size, len(rows))))
                for start in range(0, len(rows), self.config.batch_size)
            ]
        completions: list[Completion | None] = [None] * len(rows)
        with self.lock, torch.inference_mode():
            for chunk in chunks:
                answers = self._decode_rows(chunk.prompts, chunk.source, [row_seeds[r] for r in chunk.rows], sampling)
                for row, answer in zip(chunk.rows, answers, strict=True):
                    completions[row] = answer
        return [[completions[index * n + sample] for sample in range(n)] for index in range(len(encoded))]  # type: ignore[misc]

    def _decode_rows(
        self, prompts: list[list[int]], source: list[int], seeds: list[int], sampling: Sampling
    ) -> list[Completion]:
        """Decode one row per entry of `source` (an index into the distinct `prompts`), each
        row sampled from its own seed; each distinct prompt is encoded once."""
        import torch

        from workbench.models.seeded_rows import RowSeededSampler

        width = max(len(ids) for ids in prompts)
        pad = self.tokenizer.pad_token_id
        device = self.model.device
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompts], device=device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts], device=device)
        max_new = max(1, min(sampling.max_new_tokens, self.context_length - width))
        index = torch.tensor(source, device=device)
        extra = {}
        if width > 1 and len(prompts) < len(source):
            cache = self.prefill(input_ids[:, :-1], attention[:, :-1], 1)
            cache.batch_select_indices(index)
            extra[cache_argument()] = cache
        input_ids, attention = input_ids[index], attention[index]
        greedy = sampling.temperature <= 0
        processors = [] if greedy else [RowSeededSampler(seeds, sampling.temperature, sampling.top_p)]
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_new,
            min_new_tokens=min(sampling.min_new_tokens, max_new) or None,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=pad,
            logits_processor=processors,
            stopping_criteria=self._stop_criteria(),
            **extra,
        )
        self._raise_if_stopped()
        return [self._completion(row) for row in output[:, width:].tolist()]

    def _stop_criteria(self):
        """generate()'s stopping criteria: every row ends once the stop event is set."""
        if self.stop_event is None:
            return None
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        event = self.stop_event

        class StopAsked(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([StopAsked()])

    def _raise_if_stopped(self) -> None:
        if self.stop_event is not None and self.stop_event.is_set():
            raise Cancelled()

    def _completion(self, row: list[int]) -> Completion:
        eos_ids = self.eos_ids()
        length, finish = len(row), "length"
        for position, token in enumerate(row):
            if token in eos_ids:
                length, finish = position, "stop"
                break
        text = self.tokenizer.decode(row[:length], skip_special_tokens=True)
        return Completion(text=text, tokens=length, finish_reason=finish)

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
            stopping_criteria=self._stop_criteria(),
            **extra,
        )
        self._raise_if_stopped()
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


def _unshared_chunk(rows: list[list[int]], indices: range):
    from workbench.models.seeded_rows import Chunk

    return Chunk(prompts=[rows[i] for i in indices], rows=list(indices), source=list(range(len(indices))))
