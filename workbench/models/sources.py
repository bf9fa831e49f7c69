"""Where a model's weights come from: the embedded model, a local folder, or a cached
Hugging Face id. Its own module so the backends, which need it, do not import the
package that creates them."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.errors import ModelNotFoundError


def resolve_model_source(name: str, allow_download: bool = False) -> str:
    """Turn a model name into a loadable path or cached hub id, without loading anything.

    `embedded` -> the converted safetensors folder (converting on first use happens in
    the backend); an existing folder -> itself; a Hugging Face id -> itself if it is in
    the local hub cache (or downloads are allowed). Anything else: ModelNotFoundError
    naming everything that was tried.
    """
    from workbench.models.embedded import EMBEDDED_NAME, gguf_path

    if name == EMBEDDED_NAME:
        gguf_path()  # raises a clear error when the wheel is missing
        return EMBEDDED_NAME
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"model {name!r}: folder {folder} has no config.json")
        return str(folder)
    tried = ["not 'embedded'", f"no folder {folder}"]
    if "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
        except Exception:  # a malformed id is simply not cached
            cached = None
        if isinstance(cached, str):
            return name
        hub_cache = os.environ.get("HF_HUB_CACHE") or "~/.cache/huggingface/hub"
        tried.append(f"not in the Hugging Face cache ({hub_cache})")
        if allow_download and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false"):
            return name
    else:
        tried.append("not a Hugging Face id (owner/name)")
    raise ModelNotFoundError(f"model {name!r} not found: " + "; ".join(tried))
