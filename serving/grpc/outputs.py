"""The model's answer as a ModelInferResponse: its output and, for a classifier, `label` (the
predicted class, INT64 [N, 1]); raw_output_contents when the request sent raw inputs (as
tritonclient does), else typed contents (as grpcurl users write them)."""

from __future__ import annotations

import numpy as np

from models.spec import ModelSpec, Tensor
from serving.engine.tensors import DTYPES, model_outputs
from serving.grpc.inputs import CONTENTS
from serving.grpc.protos import service_pb2 as pb


def response(
    spec: ModelSpec,
    version: int,
    request_id: str,
    outputs: list[Tensor],
    raw: bool,
    y: np.ndarray,
) -> pb.ModelInferResponse:
    tensors = model_outputs(spec, y)
    answer = pb.ModelInferResponse(model_name=spec.name, model_version=str(version), id=request_id)
    for t in outputs:
        arr = np.ascontiguousarray(tensors[t.name], dtype=DTYPES[t.datatype])
        out = answer.outputs.add(name=t.name, datatype=t.datatype, shape=arr.shape)
        if raw:
            answer.raw_output_contents.append(arr.tobytes())
        else:
            getattr(out.contents, CONTENTS[t.datatype][0]).extend(arr.reshape(-1).tolist())
    return answer
