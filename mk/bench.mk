# Serving benchmarks (issues 5, 11 and 17); all but bench-attack need wrk (`apt-get install wrk`);
# LitServe peers need `pip install litserve` (they are skipped with a note otherwise).
#   make bench-serve                 this service vs peers, about 7 minutes -> bench/results/serve.md
#   make bench-serve ARGS=--quick    short windows, under 2 minutes -> bench/results/serve-quick.md
#   make bench-overload              open loop at 2x capacity -> bench/results/overload.md
#   make bench-latency               p50 at c=1, batching on vs off -> bench/results/latency_c1.md
#   make bench-attack                hostile clients beside a normal one (issue 17), about 2 min
#                                    -> bench/results/attack.md (ARGS=--quick: ~1 min, slow ones cut)
# ARGS passes flags through, e.g. ARGS='--only ours,floor --models-dir /path/to/repository'.

.PHONY: bench-serve bench-overload bench-latency bench-attack

bench-serve: $(VENV)/.dev
	$(BIN)/python -m bench.serve_bench $(ARGS)

bench-overload: $(VENV)/.dev
	$(BIN)/python -m bench.overload $(ARGS)

bench-latency: $(VENV)/.dev
	$(BIN)/python -m bench.latency_c1 $(ARGS)

bench-attack: $(VENV)/.dev
	$(BIN)/python -m bench.attack $(ARGS)
