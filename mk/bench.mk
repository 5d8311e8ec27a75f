# Serving benchmarks (issues 5, 11, 17 and 19); all but bench-attack need wrk (`apt-get install
# wrk`); LitServe peers need `pip install litserve` (they are skipped with a note otherwise).
#   make bench-serve                 this service vs peers (PyTriton too, HTTP and gRPC), about
#                                    8 minutes -> bench/results/serve.md
#   make bench-serve ARGS=--quick    short windows, under 2 minutes -> bench/results/serve-quick.md
#   make bench-overload              open loop at 2x capacity -> bench/results/overload.md
#   make bench-latency               p50 at c=1, batching on vs off -> bench/results/latency_c1.md
#   make bench-attack                hostile clients beside a normal one (issue 17), about 2 min
#                                    -> bench/results/attack.md (ARGS=--quick: ~1 min, slow ones cut)
#   make bench-grpc                  Triton's perf_analyzer over HTTP and gRPC (issue 19), this
#                                    service and PyTriton, batch 1/64, c=1/32, plus ONNX Runtime
#                                    alone at batch 64 and each protocol's server with no model;
#                                    about 4 minutes -> bench/results/grpc.md
#   make bench-grpc ARGS=--quick     short windows, under 2 minutes -> bench/results/grpc-quick.md
# ARGS passes flags through, e.g. ARGS='--only ours,floor --models-dir /path/to/repository'.
# perf_analyzer comes from ../shared/tools/perf-analyzer.sh (ARGS='--perf-analyzer PATH' elsewhere);
# it always runs with --input-data zero: its default random data holds NaNs, which we refuse.
# PyTriton (nvidia-pytriton 0.7.0, the [pytriton] extra) needs numpy < 2, so it gets its own venv,
# $(PYTRITON_VENV), made on first use. Its peer (bench/peers/pytriton_server.py) imports only
# numpy, onnxruntime, pytriton and the repo's models/ (from the working directory), so the venv
# holds the extra's packages and onnxruntime, not the project: resolving the whole project beside
# numpy < 2 sent pip's resolver backtracking for over 20 minutes on 2026-12-07.

PYTRITON_VENV ?= .venv-pytriton

.PHONY: bench-serve bench-overload bench-latency bench-attack bench-grpc bench-ab

bench-serve: $(VENV)/.dev $(PYTRITON_VENV)/.ok
	$(BIN)/python -m bench.serve_bench --pytriton-python $(PYTRITON_VENV)/bin/python $(ARGS)

bench-overload: $(VENV)/.dev
	$(BIN)/python -m bench.overload $(ARGS)

bench-latency: $(VENV)/.dev
	$(BIN)/python -m bench.latency_c1 $(ARGS)

bench-attack: $(VENV)/.dev
	$(BIN)/python -m bench.attack $(ARGS)

bench-grpc: $(VENV)/.dev $(PYTRITON_VENV)/.ok
	$(BIN)/python -m bench.grpc_bench --pytriton-python $(PYTRITON_VENV)/bin/python $(ARGS)

# The [pytriton] extra, plus the onnxruntime this service runs (the same version on both sides).
$(PYTRITON_VENV)/.ok: pyproject.toml $(VENV)/.dev
	$(PYTHON) -m venv $(PYTRITON_VENV)
	$(BIN)/python -c 'import tomllib, onnxruntime; \
	  extra = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]; \
	  print("\n".join([*extra["pytriton"], "onnxruntime==" + onnxruntime.__version__]))' \
	  > $(PYTRITON_VENV)/requirements.txt
	$(PYTRITON_VENV)/bin/pip install -q -r $(PYTRITON_VENV)/requirements.txt
	touch $@

# The hot path against a baseline checkout, alternating (issues 17 and 18: within 5 %):
#   git worktree add /tmp/base <commit> && make bench-ab BASE=/tmp/base -> bench/results/ab-serve.md
bench-ab: $(VENV)/.dev
	$(BIN)/python -m bench.ab_serve --base $(BASE) $(ARGS)
