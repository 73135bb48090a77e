"""PRIP ``Products``: the entity set and single products, answered from the catalogue."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
