"""The job specification the orchestrator hands to the wrapper, and the manifest it returns.

Both are plain JSON documents validated by pydantic at the edge: the wrapper runs in
a container without Airflow or database access, so everything it needs is in the
spec, and everything the orchestrator needs back (to register products) is in the
manifest. The manifest is deterministic: the same spec run twice gives the same
manifest, byte for byte (no timings, no host paths).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from proseo.missions.types import JobOrderDialect, UtcDateTime

ParamValue = str | int | float | bool
SCHEMA: Literal[1] = 1
#: 2: the manifest lists the products the wrapper staged (``inputs``), which become the
#: outputs' lineage; a version-1 manifest (an older wrapper image) has none.
MANIFEST_SCHEMA: Literal[2] = 2


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageRef(Model):
    """A storage root (file:///dir or s3://bucket/prefix) and its fsspec options."""

    url: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class InputFile(Model):
    """One file of one input product, with what it must be when staged."""

    product_id: int | str | None = None
    product_type: str
    file_name: str = Field(min_length=1)
    storage: str  # name of an entry in JobSpec.storages
    key: str = Field(min_length=1)  # relative key under that storage's root
    size: int = Field(ge=0)
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # XXH3-128, what stage-in verifies every byte with; None for a product catalogued
    # before it was recorded (stage-in then verifies SHA-256).
    xxh128: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    start: UtcDateTime
    stop: UtcDateTime


class ConfigFile(Model):
    """A static configuration file of the processor's configuration (an Input in the Job Order)."""

    file_type: str
    version: str
    path: str  # a path inside the processor image / on the worker


class TaskSpec(Model):
    name: str
    version: str


class OutputSpec(Model):
    """A planned output product: the only files the wrapper will collect and upload."""

    product_type: str
    file_name: str = Field(min_length=1)
    key: str = Field(min_length=1)  # deterministic storage key under the output storage
    start: UtcDateTime
    stop: UtcDateTime
    parameters: dict[str, ParamValue] = Field(default_factory=dict)


class JobSpec(Model):
    schema_version: Literal[1] = SCHEMA
    job_step_id: int | str
    mission: str
    processor: str
    version: str
    configuration: str
    mode: str | None = None
    file_class: str
    tasks: list[TaskSpec] = Field(min_length=1)
    command: list[str] = Field(min_length=1)  # argument list; the Job Order path is appended
    dialect: JobOrderDialect = JobOrderDialect.MMFI_1_8
    stdout_log_level: str = "INFO"
    stderr_log_level: str = "WARNING"  # INFO on both streams would log every line twice
    processing_station: str = "proseo"
    sensing_start: UtcDateTime
    sensing_stop: UtcDateTime
    dynamic_parameters: dict[str, ParamValue] = Field(default_factory=dict)
    config_files: list[ConfigFile] = Field(default_factory=list)
    inputs: list[InputFile] = Field(default_factory=list)
    outputs: list[OutputSpec] = Field(min_length=1)
    storages: dict[str, StorageRef]
    output_storage: str
    log_key: str  # where the processor log is kept (success or failure)
    job_order_key: str  # where the Job Order is kept, as provenance
    max_run_time_s: float = Field(gt=0)
    transfer_workers: int = Field(default=8, ge=1, le=64)

    @model_validator(mode="after")
    def _references(self) -> JobSpec:
        for f in self.inputs:
            if f.storage not in self.storages:
                raise ValueError(f"input {f.file_name}: unknown storage {f.storage!r}")
        if self.output_storage not in self.storages:
            raise ValueError(f"output_storage {self.output_storage!r} is not in storages")
        names = [o.file_name for o in self.outputs]
        if len(set(names)) != len(names):
            raise ValueError("two planned outputs have the same file name")
        return self


class Status(StrEnum):
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"  # exit code 1..127: outputs kept, warning recorded
    FAILED = "FAILED"  # exit code >= 128, time limit, bad input or output


class ManifestFile(Model):
    file_name: str
    key: str
    url: str
    size: int
    md5: str
    sha256: str
    xxh128: str | None = None  # absent from the manifests of older wrapper images


class ManifestProduct(Model):
    product_type: str
    file_name: str
    start: datetime
    stop: datetime
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    files: list[ManifestFile]
    metadata: dict[str, Any] = Field(default_factory=dict)  # what the processor reported
    # GeoJSON Point or Polygon from the metadata's "footprint" (checked when collected).
    footprint: dict[str, Any] | None = None


class Manifest(Model):
    schema_version: Literal[1, 2] = MANIFEST_SCHEMA
    job_step_id: int | str
    status: Status
    # Ids of the products whose files were staged and verified for the processor (in the
    # spec's order): exactly what the run read, recorded as the outputs' lineage.
    inputs: list[int | str] | None = None
    exit_code: int | None = None
    reason: str | None = None  # why a run is WARNING or FAILED
    stage: Literal["spec", "stage-in", "job-order", "run", "collect", "upload", "done"] = "done"
    products: list[ManifestProduct] = Field(default_factory=list)
    job_order: ManifestFile | None = None
    # The log's bytes (a real processor logs timestamps) are not part of the manifest,
    # only where it is kept, so the manifest of a repeated run is the same.
    log_url: str | None = None
