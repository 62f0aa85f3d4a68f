# streamsr: `make demo` runs the main job on the shipped sample clip; `make test` runs the test suite.
# Both create ./.venv on first use (CPU build of torch pinned; override TORCH for a CUDA build).
PYTHON ?= python3
TORCH  ?= torch==2.13.0
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/streamsr enhance samples/sample.mp4 -o sample_x4.mp4 --compare --overwrite
	@echo "open sample_x4.mp4 (4x) and sample_x4.compare.mp4 (bicubic | srgan-x4-lite, labelled)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) sample_x4.mp4 sample_x4.compare.mp4
