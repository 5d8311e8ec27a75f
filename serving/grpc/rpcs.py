"""What each RPC of inference.GRPCInferenceService answers, over the engine.

Each method takes the request message and the Call (metadata, deadline, hang-up) and returns the
response message, or raises ApiError; the carrier (serving/grpc/servicer.py for grpc.aio, the
Ray Serve deployment through serving/ray_grpc.py) turns that into a gRPC status. Answers are the
REST /v2 routes' answers: the same registry, versions, batcher, limits and keys.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf import json_format

from serving.engine import infer as engine
from serving.engine import repository
from serving.engine.model_config import EXTENSIONS, model_config, model_metadata
from serving.engine.registry import Entry, Registry
from serving.engine.statistics import model_stats, models_stats
from serving.errors import ApiError
from serving.grpc import inputs, outputs
from serving.grpc.call import Call
from serving.grpc.protos import model_config_pb2
from serving.grpc.protos import service_pb2 as pb
from serving.keys import admin_keys_of, keys_of
from serving.settings import Settings


class Rpcs:
    def __init__(
        self, settings: Settings, registry: Callable[[], Registry], name: str, version: str
    ) -> None:
        self.settings = settings
        self._registry = registry  # looked up per call: the app makes its registry at startup
        self.name, self.version = name, version
        self.keys = keys_of(settings)
        self.admin = admin_keys_of(settings)

    @property
    def registry(self) -> Registry:
        return self._registry()

    def entry(self, name: str, version: str, call: Call) -> Entry:
        found = self.registry.get_version(name, version or None)
        call.model = name  # a metrics label only once the registry knows the name
        return found

    # ---- health and metadata -----------------------------------------------------------
    async def ServerLive(self, request: pb.ServerLiveRequest, call: Call) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, call: Call
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.registry.ready)

    async def ModelReady(self, request: pb.ModelReadyRequest, call: Call) -> pb.ModelReadyResponse:
        try:
            self.entry(request.name, request.version, call)
        except ApiError as e:  # unknown, or not loaded: not ready (as Triton answers; REST
            if e.status not in (404, 503):  # says 404 for the unknown ones)
                raise
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, call: Call
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name=self.name, version=self.version, extensions=EXTENSIONS
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, call: Call
    ) -> pb.ModelMetadataResponse:
        entry = self.entry(request.name, request.version, call)
        meta = model_metadata(entry.spec, entry.version, entry.runner.backend)
        return json_format.ParseDict(meta, pb.ModelMetadataResponse())

    # ---- inference ----------------------------------------------------------------------
    async def ModelInfer(self, request: pb.ModelInferRequest, call: Call) -> pb.ModelInferResponse:
        if self.keys:
            call.check_key(self.keys)
        entry = self.entry(request.model_name, request.model_version, call)
        s = self.settings
        req = inputs.parse(request, entry.spec, s.max_items)
        timeout_s = call.timeout(s.request_timeout_s, req.timeout_s)
        y = await engine.infer(entry, req.x, timeout_s, call.gone, "inputs", bad_input=400)
        return outputs.response(entry.spec, entry.version, request.id, req.outputs, req.raw, y)

    # ---- extensions: configuration, statistics, repository ----------------------------
    async def ModelConfig(
        self, request: pb.ModelConfigRequest, call: Call
    ) -> pb.ModelConfigResponse:
        entry = self.entry(request.name, request.version, call)
        config = json_format.ParseDict(
            model_config(entry, self.settings),
            model_config_pb2.ModelConfig(),
            ignore_unknown_fields=True,
        )
        return pb.ModelConfigResponse(config=config)

    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, call: Call
    ) -> pb.ModelStatisticsResponse:
        if request.name:
            stats = model_stats(self.entry(request.name, request.version, call))
        else:
            stats = models_stats(self.registry.entries.values())
        return json_format.ParseDict(
            stats, pb.ModelStatisticsResponse(), ignore_unknown_fields=True
        )

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, call: Call
    ) -> pb.RepositoryIndexResponse:
        models = repository.index(self.registry, ready_only=request.ready)
        return json_format.ParseDict({"models": models}, pb.RepositoryIndexResponse())

    def _admin(self, call: Call) -> None:
        if not self.admin:
            raise ApiError(503, "the model-repository API is off: set SERVING_ADMIN_KEY")
        call.check_key(self.admin, "admin key")

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, call: Call
    ) -> pb.RepositoryModelLoadResponse:
        self._admin(call)
        await repository.load(self.registry, request.model_name)
        call.model = request.model_name  # a label once the repository knows the name
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, call: Call
    ) -> pb.RepositoryModelUnloadResponse:
        self._admin(call)
        await repository.unload(self.registry, request.model_name)
        call.model = request.model_name
        return pb.RepositoryModelUnloadResponse()


UNARY = (
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
    "ModelConfig",
    "ModelStatistics",
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
)
