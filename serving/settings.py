"""Service settings: environment variables (SERVING_*), overridden by `python -m serving` flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.spec import SPECS, specs_in
from models.store import REPOSITORY


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVING_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind; the images set 0.0.0.0.")
    port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="Port of the gRPC Open Inference Protocol (inference.GRPCInferenceService), "
        "on the same host, in the same process as HTTP; 0: off.",
    )
    workers: int = Field(1, ge=1, description="Worker processes (uvicorn); each loads the models.")
    models_dir: Path = Field(REPOSITORY, description="Model repository: <name>/<version>/...")
    models: list[str] = Field(list(SPECS), description="Models to serve (names from models.spec).")
    backend: Literal["onnx", "torch"] = "onnx"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(0, ge=0, description="Inference threads per worker; 0 = cores / workers.")

    # Limits on what one request may ask for. A JSON prediction body may be as large as its
    # model's max_items inputs need (JSON_BYTES_PER_VALUE each), never more than max_body_bytes.
    max_items: int = Field(1024, ge=1, description="Inputs per request; more is answered 413.")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body (and gRPC message) of all."
    )
    max_upload_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Largest image upload (multipart body)."
    )
    max_image_pixels: int = Field(16_000_000, ge=1, description="Uploaded image width x height.")

    # The front door (serving/http/): what one client may send, in size and in time. The
    # defaults are nginx's (large_client_header_buffers 4 8k) or tighter.
    max_request_line_bytes: int = Field(8192, ge=256, description="Request line; past it, 414.")
    max_header_bytes: int = Field(8192, ge=256, description="One header line; past it, 431.")
    max_head_bytes: int = Field(
        32 * 1024, ge=1024, description="Request line and all headers; past it, 431."
    )
    max_headers: int = Field(100, ge=1, description="Header lines per request; past it, 431.")
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="From connection (or the request's first byte) to its last "
        "header; past it, 408 and close.",
    )
    body_idle_timeout_s: float = Field(
        10.0, gt=0, description="Longest wait for the next piece of a body; past it, 408."
    )
    body_timeout_s: float = Field(30.0, gt=0, description="Whole body; past it, 408.")
    keepalive_timeout_s: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this."
    )
    max_connections: int = Field(
        2048, ge=1, description="Open connections per worker; past it, new ones are closed."
    )
    decode_threads: int = Field(1, ge=1, description="Threads decoding uploaded images.")
    decode_queue: int = Field(
        2, ge=0, description="Uploads waiting for a decode thread; past it, 503 at once."
    )

    # Dynamic batching: concurrent requests for one model are run as one call.
    batching: bool = True
    max_batch_size: int = Field(64, ge=1)
    max_wait_ms: float = Field(0.0, ge=0.0, description="Extra wait for a batch to fill; 0: none.")
    max_queue: int = Field(1024, ge=1, description="Queued inputs per model; past it, 503.")
    max_in_flight: int = Field(
        128,
        ge=1,
        description="Prediction requests being handled per worker; past it, 503 at "
        "once (before the body is read), which keeps accepted requests' latency bounded.",
    )

    request_timeout_s: float = Field(30.0, gt=0, description="Past it a request answers 504.")
    load_timeout_s: float = Field(60.0, gt=0, description="Past it a model load is refused.")
    log_level: str = "info"
    access_log: bool = Field(False, description="One JSON log line per request (costs a few %).")

    # Access. Keys come from the environment only (never flags: `ps` would show them).
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        [], description="SERVING_API_KEYS, comma-separated: Bearer keys for predictions."
    )
    admin_key: SecretStr | None = Field(None, description="Bearer key for /admin/*; unset: off.")

    # Model lifecycle.
    watch: bool = Field(False, description="Poll the repository and load new versions.")
    watch_interval_s: float = Field(2.0, gt=0)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _known_models(self) -> Settings:
        known = specs_in(self.models_dir)  # built-in, and variants described by their cards
        unknown = [n for n in self.models if n not in known]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; known: {list(known)}")
        return self
