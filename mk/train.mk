# Training with DistributedDataParallel (issue 10): torchrun starts NPROC processes of
# `python -m training`; gloo on the CPU, nccl on CUDA (one GPU per process, by LOCAL_RANK).
# --batch-size is per process (the global batch is NPROC times it); rank 0 alone publishes.
#   make train-ddp MODEL=lenet NPROC=2            one machine, 2 processes
#   make train-ddp MODEL=points ARGS='--epochs 4'
#   make bench-train-ddp                          lenet, 1 vs 2 processes -> bench/results/train_ddp.md
# Several machines: run the same command on every node with torchrun's rendezvous flags, e.g. two
# nodes of 4 processes each, node 0 at 10.0.0.1 (any free port, reachable from the other nodes):
#   torchrun --nnodes 2 --nproc-per-node 4 --node-rank 0 --rdzv-backend c10d \
#     --rdzv-endpoint 10.0.0.1:29400 --rdzv-id lenet-1 -m training lenet --data-dir DATA
#   (node 1: the same with --node-rank 1; every node needs the data and the code; the models
#   repository is written by global rank 0 only, so give it a --models-dir that node 0 can write).
# On one machine without torchrun, `make train` runs the same code as a single process.
NPROC ?= 2

.PHONY: train-ddp bench-train-ddp

train-ddp: $(VENV)/.dev
	$(BIN)/torchrun --nproc-per-node $(NPROC) -m training $(MODEL) --data-dir $(DATA_DIR) $(ARGS)

bench-train-ddp: $(VENV)/.dev
	$(BIN)/python -m bench.train_ddp --data-dir $(DATA_DIR) $(ARGS)

# The tutorials' six optimizers (mlp on MNIST, curve) and three activations (dnn), fixed step
# budgets, same seed and batch order: bench/results/{optimizers,activations}.{md,png}, under 5 min.
.PHONY: compare-optimizers
compare-optimizers: $(VENV)/.dev
	$(BIN)/python -m bench.compare --data-dir $(DATA_DIR) $(ARGS)
