"""All catalogue tables, importable from one place."""

from proseo.catalog.db import Base
from proseo.catalog.model_access import ALL_MISSIONS, MissionRole
from proseo.catalog.model_cadip import CadipFile, CadipSession, CadipState
from proseo.catalog.model_campaign import Campaign, CampaignState
from proseo.catalog.model_interface import InterfaceCursor
from proseo.catalog.model_mission import (
    ConfiguredProcessor,
    Facility,
    Mission,
    MissionRevision,
    Orbit,
    ProductClass,
    Spacecraft,
)
from proseo.catalog.model_odip import OdipOrder
from proseo.catalog.model_order import (
    InputQuery,
    InputQueryProduct,
    Job,
    JobStep,
    JobStepEdge,
    OrderEvent,
    OrderState,
    ProcessingOrder,
    StepState,
)
from proseo.catalog.model_product import (
    Product,
    ProductFile,
    ProductInput,
    ProductionType,
    ProductStatus,
    Provenance,
)
from proseo.catalog.model_subscription import (
    NotificationState,
    Subscription,
    SubscriptionNotification,
    SubscriptionStatus,
    SubscriptionType,
)

__all__ = [
    "ALL_MISSIONS",
    "Base",
    "CadipFile",
    "CadipSession",
    "CadipState",
    "Campaign",
    "CampaignState",
    "ConfiguredProcessor",
    "Facility",
    "InputQuery",
    "InputQueryProduct",
    "InterfaceCursor",
    "Job",
    "JobStep",
    "JobStepEdge",
    "Mission",
    "MissionRevision",
    "MissionRole",
    "NotificationState",
    "OdipOrder",
    "Orbit",
    "OrderEvent",
    "OrderState",
    "ProcessingOrder",
    "Product",
    "ProductClass",
    "ProductFile",
    "ProductInput",
    "ProductStatus",
    "ProductionType",
    "Provenance",
    "Spacecraft",
    "StepState",
    "Subscription",
    "SubscriptionNotification",
    "SubscriptionStatus",
    "SubscriptionType",
]
