"""Which configured processor makes a class in an order: pin, then mode, then newest.

Versions are compared as versions ("02.10.00" > "02.9.00"), never as strings. A
configuration that names the order's mode wins over one that names no mode; one
that names other modes only is never used for this mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proseo.missions.models import DEFAULT_CONFIGURATION, ConfiguredProcessor, MissionConfig
from proseo.missions.types import version_key

if TYPE_CHECKING:
    from proseo.planning.planner import Planner


def configuration_modes(cfg: MissionConfig, processor: str, configuration: str) -> list[str] | None:
    """Modes a configuration is for; None if the configuration is unknown (the implicit default)."""
    for conf in cfg.processors[processor].configurations:
        if conf.version == configuration:
            return list(conf.modes)
    return [] if configuration == DEFAULT_CONFIGURATION else None


def rank_processors(
    cfg: MissionConfig, processor: str, mode: str, pins: list[str]
) -> tuple[list[ConfiguredProcessor], str]:
    """Candidates for ``processor`` in ``mode``, best first, and how they were chosen."""
    everything = [cp for cp in cfg.configured_processors() if cp.processor == processor]
    pinned = [cp for cp in everything if cp.id in pins]
    if pinned:
        return pinned, "pinned by the order"
    usable: list[tuple[bool, ConfiguredProcessor]] = []
    for cp in everything:
        if not cp.enabled:
            continue
        modes = configuration_modes(cfg, processor, cp.configuration) or []
        if not modes or mode in modes:
            usable.append((mode in modes, cp))
    usable.sort(
        key=lambda item: (item[0], version_key(item[1].version), version_key(item[1].configuration)),
        reverse=True,
    )
    return [cp for _, cp in usable], f"newest version for mode {mode}"


def choose_processor(planner: Planner, run_class: str) -> ConfiguredProcessor:
    cache = planner.processor_choice
    if run_class in cache:
        return cache[run_class]
    cfg = planner.cfg
    processor = cfg.producer_of(run_class)
    if processor is None:
        raise planner.fail(f"{run_class} has no processor")
    ranked, _ = rank_processors(cfg, processor, planner.mode, planner.spec.configured_processors)
    if not ranked:
        raise planner.fail(
            f"no enabled configured processor of {processor} serves mode {planner.mode} "
            f"(needed for {run_class})"
        )
    cache[run_class] = ranked[0]
    return ranked[0]
