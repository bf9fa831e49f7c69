"""Without vLLM installed (the main .venv), asking for the vllm backend says how to get it."""

from __future__ import annotations

import importlib.util

import pytest

from workbench.config import ModelConfig
from workbench.errors import ModelNotFoundError


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_names_the_setup_command() -> None:
    from workbench.models import make_generator

    with pytest.raises(ModelNotFoundError, match="make vllm-setup") as caught:
        make_generator(ModelConfig(backend="vllm"))
    assert "\n" not in str(caught.value)
