"""Model backends behind one `Generator` protocol, created by `make_generator`.

Imports are lazy: naming a backend costs nothing until a model is actually needed, so
the TUI starts without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.errors import ModelNotFoundError
from workbench.models.sources import resolve_model_source

__all__ = ["make_generator", "resolve_model_source"]

if TYPE_CHECKING:
    from workbench.config import ModelConfig
    from workbench.models.base import Generator


def make_generator(config: ModelConfig, *, start_counts: dict[str, int] | None = None) -> Generator:
    """Build the configured backend. `start_counts` resumes the scripted backend's counters."""
    if config.backend == "scripted":
        from workbench.models.scripted import ScriptedGenerator

        return ScriptedGenerator(config.script, start_counts=start_counts)
    if config.backend == "hf":
        from workbench.models.hf import HFGenerator

        return HFGenerator(config)
    if config.backend == "vllm":
        from workbench.models.vllm import VLLMGenerator

        return VLLMGenerator(config)
    if config.backend == "openai":
        from workbench.models.openai import OpenAIGenerator

        return OpenAIGenerator(config)
    raise ModelNotFoundError(f"unknown model backend {config.backend!r}")
