"""The Open Inference Protocol over gRPC (KServe v2 / Triton `inference.GRPCInferenceService`).

It translates gRPC to the engine (serving/engine/) and nothing else: it never imports the HTTP
side (serving.api, serving.http); tests/serving/test_grpc_layout.py checks that.

    protos.py    the generated message and service modules (from tritonclient, pinned)
    codes.py     ApiError statuses -> gRPC status codes
    call.py      one RPC's metadata: request id, API key, deadline, hang-up, metrics
    inputs.py    ModelInferRequest -> the model's float32 batch and the outputs asked for
    outputs.py   the model's answer -> ModelInferResponse
    rpcs.py      what each RPC answers (protocol-neutral about who carries it)
    servicer.py  grpc.aio's servicer over rpcs.py
    server.py    the grpc.aio server: the servicer, health, reflection, start and stop
"""
