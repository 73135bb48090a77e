"""Pydantic models of a mission configuration file (``mission_configs/<mission>.yaml``).

These models check each value on its own (types, ranges, formats). Checks that
need the whole file (a processor named by a class exists, no cycles, ...) live in
:mod:`proseo.missions.crossref`. Every model forbids unknown keys, so a typo is an
error on its own line rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from proseo.missions.base import Model, Name, ParamValue
from proseo.missions.production import Timeliness, Trigger
from proseo.missions.sources import SourceSpec
from proseo.missions.types import (
    Backend,
    Duration,
    JobOrderDialect,
    ParameterType,
    ProcessingLevel,
    Quantity,
    SlicingType,
    UtcDateTime,
    VersionText,
    Visibility,
)

#: Versions of processors and configurations: they become part of configured-processor ids
#: (``NAME_VERSION_CONFIGURATION``, at most 128 characters in the catalogue).
Version = Annotated[VersionText, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=30)]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")]
#: Orbits per spacecraft (about 34 years of 90-minute orbits); more is a mistake in the file.
MAX_ORBITS = 200_000
#: Orbit numbers are stored as 32-bit integers in the catalogue.
MAX_ORBIT_NUMBER = 2**31 - 1


class Mission(Model):
    """The mission itself: identity, vocabularies and defaults for every product."""

    code: Code
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    file_classes: list[Name] = Field(min_length=1)
    processing_modes: list[Name] = Field(min_length=1)
    product_file_template: str = Field(min_length=1)
    parameters: dict[Name, ParameterType] = Field(default_factory=dict)
    product_retention: Duration | None = None
    order_retention: Duration | None = None


class OrbitRow(Model):
    number: int = Field(ge=0, le=MAX_ORBIT_NUMBER)
    start: UtcDateTime
    stop: UtcDateTime


class OrbitGenerator(Model):
    """Orbits of constant period: orbit ``first_orbit + k`` starts at ``epoch + k * period``."""

    epoch: UtcDateTime
    period: Duration
    first_orbit: int = Field(default=1, ge=0, le=MAX_ORBIT_NUMBER)
    count: int | None = Field(default=None, gt=0, le=MAX_ORBITS)
    until: UtcDateTime | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> OrbitGenerator:
        if (self.count is None) == (self.until is None):
            raise ValueError("give exactly one of 'count' and 'until'")
        if self.period <= timedelta(0):
            raise ValueError("period must be positive")
        if self.until is not None and self.until <= self.epoch:
            raise ValueError("'until' must be after 'epoch'")
        return self


class Orbits(Model):
    """Exactly one source of orbits: an inline table, a CSV file, or a generator."""

    table: list[OrbitRow] | None = None
    file: str | None = None
    generate: OrbitGenerator | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Orbits:
        given = [k for k in ("table", "file", "generate") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'table', 'file' and 'generate'"
                + (f" (found {', '.join(given)})" if given else "")
            )
        return self


class Spacecraft(Model):
    code: Code
    name: str = Field("", max_length=200)
    orbits: Orbits | None = None


class Slicing(Model):
    """How orders cut time into jobs for this class (an order may override it).

    TIME_SLICE slices lie on one grid, ``anchor + k * duration``, whatever an order's
    start: every order cuts the same slices, so a slice never straddles two of the
    data's natural units (scans, granules) and reruns find the same products. The
    anchor defaults to midnight UTC (:data:`DEFAULT_ANCHOR`); a mission whose scans
    start at :15 says ``anchor: 2025-01-01T00:15:00Z``. It is left out of the dumped
    configuration when unset, so configurations without it keep their digest.
    """

    type: SlicingType = SlicingType.NONE
    duration: Duration | None = None
    overlap: Duration = timedelta(0)
    anchor: UtcDateTime | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _consistent(self) -> Slicing:
        if self.type is SlicingType.TIME_SLICE:
            if self.duration is None or self.duration <= timedelta(0):
                raise ValueError("TIME_SLICE needs a positive 'duration'")
            if self.overlap >= self.duration:
                raise ValueError("'overlap' must be shorter than 'duration'")
        elif self.duration is not None:
            raise ValueError(f"'duration' applies only to TIME_SLICE, not {self.type.value}")
        elif self.anchor is not None:
            raise ValueError(f"'anchor' applies only to TIME_SLICE, not {self.type.value}")
        elif self.overlap != timedelta(0):
            raise ValueError(f"'overlap' applies only to TIME_SLICE, not {self.type.value}")
        return self


class SelectionRuleSpec(Model):
    """One selection rule of a produced class; parsed fully by :mod:`proseo.rules`."""

    rule: str = Field(min_length=1)
    mode: Name | None = None
    configured_processors: list[str] = Field(default_factory=list)


class ProductClass(Model):
    description: str = ""
    level: ProcessingLevel | None = None
    visibility: Visibility = Visibility.INTERNAL
    slicing: Slicing = Slicing()
    components: list[Name] = Field(default_factory=list)
    processor: Name | None = None
    file_name_template: str | None = None
    file_name_pattern: str | None = None
    time_format: str = "%Y%m%dT%H%M%S"
    parameters: dict[Name, ParameterType] = Field(default_factory=dict)
    selection_rules: list[SelectionRuleSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pattern_compiles(self) -> ProductClass:
        if self.file_name_pattern is not None:
            try:
                re.compile(self.file_name_pattern)
            except re.error as exc:
                raise ValueError(
                    f"file_name_pattern is not a valid regular expression at character {exc.pos}: {exc.msg}"
                ) from exc
        return self


class ProcessorTask(Model):
    name: Name
    version: VersionText | None = None
    cpu: Quantity = "1"
    memory: Quantity = "1Gi"
    critical: bool = True


#: A container image reference: [registry/]repository[:tag][@digest].
IMAGE_PATTERN = r"^[a-z0-9][a-zA-Z0-9._/:@-]*$"


class ProcessorVersion(Model):
    version: Version = Field(min_length=1)
    #: The processor's container image; only pods need one, so it is required only
    #: when the mission has a Kubernetes facility (crossref.py), checked when given.
    image: str | None = Field(default=None, min_length=1, pattern=IMAGE_PATTERN)
    command: list[str] = Field(min_length=1)
    tasks: list[ProcessorTask] = Field(min_length=1)
    dialect: JobOrderDialect = JobOrderDialect.MMFI_1_8
    max_run_time: Duration = timedelta(hours=1)
    min_disk: Quantity = "1Gi"
    stdout_log_level: Literal["DEBUG", "INFO", "PROGRESS", "WARNING", "ERROR"] = "INFO"


class ConfigFile(Model):
    """A static configuration file handed to the processor as a Job Order input."""

    file_type: Name
    version: VersionText
    path: str = Field(min_length=1)


class Configuration(Model):
    version: Version = Field(min_length=1)
    modes: list[Name] = Field(default_factory=list)
    dynamic_parameters: dict[str, ParamValue] = Field(default_factory=dict)
    config_files: list[ConfigFile] = Field(default_factory=list)


class ConfiguredProcessorSpec(Model):
    """A processor version run with one configuration: what a job step actually runs."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)
    version: Version
    configuration: Version
    enabled: bool = True


DEFAULT_CONFIGURATION = "default"


@dataclass(frozen=True)
class ConfiguredProcessor:
    """Resolved configured processor (identifier, processor class, version, configuration)."""

    id: str
    processor: str
    version: str
    configuration: str
    enabled: bool = True


class ProcessorClass(Model):
    description: str = ""
    produces: list[Name] = Field(default_factory=list)
    versions: list[ProcessorVersion] = Field(default_factory=list)
    configurations: list[Configuration] = Field(default_factory=list)
    configured_processors: list[ConfiguredProcessorSpec] | None = None


class KubernetesSettings(Model):
    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    node_selector: dict[str, str] = Field(default_factory=dict)
    service_account: str | None = None
    image_pull_secrets: list[str] = Field(default_factory=list)
    #: A pod template (YAML, absolute path on the Airflow workers) the processor pods start
    #: from: tolerations, priority class, affinity, sidecars of the cluster; proseo's own
    #: settings (image, resources, security, volumes) are laid over it. Absent: none.
    pod_template_file: str | None = Field(
        default=None, pattern=r"^/", max_length=1000, exclude_if=lambda v: v is None
    )


#: How long a Slurm job may wait in the queue (on top of its time limit) by default.
DEFAULT_QUEUE_TIMEOUT = timedelta(days=1)


class SlurmSettings(Model):
    """Where and how a Slurm facility's batch jobs run (``sbatch`` options of every step).

    ``shared_dir`` must be the same path on the Airflow workers and the compute nodes
    (a shared file system): the job spec goes there and the manifest comes back there.
    """

    shared_dir: str = Field(min_length=2, max_length=1000, pattern=r"^/")
    partition: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    account: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    qos: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    #: The job's time limit; default: the processor's max_run_time plus the staging allowance.
    time_limit: Duration | None = None
    poll_interval: Duration = timedelta(seconds=30)
    #: How long a job may wait in the queue on top of its time limit before the step fails
    #: (default :data:`DEFAULT_QUEUE_TIMEOUT`); left out of the dump when absent, so files
    #: without it keep their digest.
    queue_timeout: Duration | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _times(self) -> SlurmSettings:
        if self.time_limit is not None and self.time_limit < timedelta(minutes=1):
            raise ValueError("time_limit must be at least 1 min (Slurm counts whole minutes)")
        if not timedelta(seconds=1) <= self.poll_interval <= timedelta(minutes=10):
            raise ValueError("poll_interval must be between 1 s and 10 min")
        if self.queue_timeout is not None and not (
            timedelta(minutes=1) <= self.queue_timeout <= timedelta(days=30)
        ):
            raise ValueError("queue_timeout must be between 1 min and 30 days")
        return self

    @property
    def queue_allowance(self) -> timedelta:
        """``queue_timeout``, else :data:`DEFAULT_QUEUE_TIMEOUT`."""
        return self.queue_timeout if self.queue_timeout is not None else DEFAULT_QUEUE_TIMEOUT


class Facility(Model):
    description: str = ""
    backend: Backend
    storage_url: str = Field(min_length=1, max_length=1000)
    storage_options: dict[str, Any] = Field(default_factory=dict)
    scratch_path: str = Field(min_length=1, max_length=1000)
    max_concurrent_job_steps: int = Field(default=4, ge=1, le=100_000)
    default: bool = False
    kubernetes: KubernetesSettings | None = None
    # Left out of the dumped configuration when absent, so files without it keep their digest.
    slurm: SlurmSettings | None = Field(default=None, exclude_if=lambda v: v is None)
    #: What one core-hour costs here (any currency, the same for every facility of the
    #: mission); the facility choice compares steps' costs with it. Absent: not compared.
    cost_per_core_hour: float | None = Field(
        default=None, ge=0, le=1_000_000, allow_inf_nan=False, exclude_if=lambda v: v is None
    )

    @model_validator(mode="after")
    def _backend_settings(self) -> Facility:
        if not re.match(r"^(file:///|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$))", self.storage_url):
            raise ValueError(
                f"storage_url {self.storage_url!r} must be file:///absolute/path or s3://bucket[/prefix]"
            )
        if not self.scratch_path.startswith("/"):
            raise ValueError(f"scratch_path {self.scratch_path!r} must be an absolute path")
        if self.backend is Backend.KUBERNETES and self.kubernetes is None:
            raise ValueError("backend 'kubernetes' needs a 'kubernetes' section with a namespace")
        if self.backend is not Backend.KUBERNETES and self.kubernetes is not None:
            raise ValueError("a 'kubernetes' section applies only to backend 'kubernetes'")
        if self.backend is Backend.SLURM and self.slurm is None:
            raise ValueError("backend 'slurm' needs a 'slurm' section with a shared_dir")
        if self.backend is not Backend.SLURM and self.slurm is not None:
            raise ValueError("a 'slurm' section applies only to backend 'slurm'")
        return self


class MissionConfig(Model):
    """A whole mission file. ``schema`` versions the file format itself."""

    schema_: Literal[1] = Field(default=1, alias="schema")
    mission: Mission
    spacecraft: list[Spacecraft] = Field(default_factory=list)
    product_classes: dict[Name, ProductClass] = Field(min_length=1)
    processors: dict[Name, ProcessorClass] = Field(default_factory=dict)
    facilities: dict[Name, Facility] = Field(min_length=1)
    # Systematic production (missions/production.py); left out of the dumped
    # configuration when absent, so files without them keep their digest.
    timeliness: Timeliness | None = Field(default=None, exclude_if=lambda v: v is None)
    triggers: dict[Name, Trigger] = Field(default_factory=dict, exclude_if=lambda v: not v)
    # Delivery points pulled on a schedule (missions/sources.py); absent: left out likewise.
    sources: dict[Name, SourceSpec] = Field(default_factory=dict, exclude_if=lambda v: not v)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def code(self) -> str:
        return self.mission.code

    def default_facility(self) -> str:
        """Name of the facility orders use unless they name one."""
        defaults = [n for n, f in self.facilities.items() if f.default]
        return defaults[0] if defaults else next(iter(self.facilities))

    def enclosing_of(self, product_type: str) -> str | None:
        """The class that lists ``product_type`` among its components, if any."""
        for ptype, pc in self.product_classes.items():
            if product_type in pc.components:
                return ptype
        return None

    def producer_of(self, product_type: str) -> str | None:
        """Processor class that makes ``product_type`` (None for input-only classes).

        A component class is made by the processor of its enclosing class, in the
        same run (an L1B processor writes all its bands at once).
        """
        seen: set[str] = set()
        current: str | None = product_type
        while current is not None and current not in seen:
            seen.add(current)
            if self.product_classes[current].processor:
                return self.product_classes[current].processor
            for name, proc in self.processors.items():
                if current in proc.produces:
                    return name
            current = self.enclosing_of(current)
        return None

    def parameter_types(self, product_type: str) -> dict[str, ParameterType]:
        """Declared parameter types for a class: the mission's, then the class's own."""
        return {**self.mission.parameters, **self.product_classes[product_type].parameters}

    def configured_processors(self) -> list[ConfiguredProcessor]:
        """Every configured processor: listed ones, or each version x configuration."""
        out: list[ConfiguredProcessor] = []
        for name, proc in self.processors.items():
            if proc.configured_processors is not None:
                specs = proc.configured_processors
            else:
                configs = [c.version for c in proc.configurations] or [DEFAULT_CONFIGURATION]
                specs = [
                    ConfiguredProcessorSpec(id=f"{name}_{v.version}_{c}", version=v.version, configuration=c)
                    for v in proc.versions
                    for c in configs
                ]
            out.extend(ConfiguredProcessor(s.id, name, s.version, s.configuration, s.enabled) for s in specs)
        return out

    def class_template(self, product_type: str) -> str:
        return self.product_classes[product_type].file_name_template or self.mission.product_file_template


def dump_config(config: MissionConfig) -> dict[str, Any]:
    """JSON-ready form stored with each configuration revision."""
    return config.model_dump(mode="json", by_alias=True, exclude_defaults=False)
