# Two commands matter on a fresh machine: `make serve` and `make test`. Both install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
MODEL  ?= all
# MODELS: one or more models, space-separated (make train MODELS="logreg dnn"); MODEL is the older name.
MODELS ?= $(MODEL)
# TENSORBOARD=DIR: TensorBoard logs of the run under DIR/<model>.
TENSORBOARD ?=
# Real MNIST: the shared copy beside the checkout when present, else ./data (MNIST_DATA_DIR wins).
DATA_DIR ?= $(or $(MNIST_DATA_DIR),$(if $(wildcard ../shared/data/MNIST/raw),../shared/data,data))
ARGS   ?=

.PHONY: install install-dev serve train test lint format bench bench-train fuzz soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Serving alone: ONNX Runtime, no torch.
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# Training, tests and tooling: torch pinned to 2.13.0 (a CPU wheel here; see README for CUDA).
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.serve $@

install: $(VENV)/.serve
install-dev: $(VENV)/.dev

serve: $(VENV)/.serve
	$(BIN)/python -m serving --host $(HOST) --port $(PORT) $(ARGS)

train: $(VENV)/.dev
	set -e; for m in $(MODELS); do \
	  $(BIN)/python -m training $$m --data-dir $(DATA_DIR) $(if $(TENSORBOARD),--tensorboard $(TENSORBOARD)) $(ARGS); \
	done

# KServe's own gRPC client, for tests/serving/test_grpc_kserve.py: kserve needs protobuf < 7,
# which this project's grpcio-reflection excludes, so it has a venv of its own (about 45 s).
KSERVE_VENV ?= .venv-kserve
$(KSERVE_VENV)/.ok:
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/pip install -q kserve==0.21.0
	touch $@

test: $(VENV)/.dev $(KSERVE_VENV)/.ok
	KSERVE_PYTHON=$${KSERVE_PYTHON:-$(abspath $(KSERVE_VENV))/bin/python} $(BIN)/python -m pytest $(ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Both benchmarks: training speed (bench/results/train_speed.md, ~2 min), then this service
# against its peers, one server at a time (bench/results/serve.md, ~8 min; needs wrk).
bench: bench-train bench-serve

bench-train: $(VENV)/.dev
	$(BIN)/python -m bench.train_speed --data-dir $(DATA_DIR) $(ARGS)

# The schemathesis run of the test suite, in full (CI runs a bounded one).
fuzz: $(VENV)/.dev
	FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),300) $(BIN)/python -m pytest tests/serving/test_fuzz.py -p no:logging $(ARGS)

# 60 s at 64 clients on loopback: errors and resident memory (bench/results/soak.md).
soak: $(VENV)/.dev
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) $(KSERVE_VENV) .pytest_cache .ruff_cache

# Targets by concern (containers, scaling, ...), one fragment each.
-include mk/*.mk
