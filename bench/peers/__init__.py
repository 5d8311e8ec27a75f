"""Peer servers for bench/serve_bench.py: each serves the same LeNet (or, the floor, no model)."""
