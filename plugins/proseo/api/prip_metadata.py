"""The PRIP's OData service document and ``$metadata`` (CSDL XML, namespace ``OData.CSC``).

Clients (EODAG's OData v4 plugin, ESA's conformance tools, generic OData libraries) read
``$metadata`` to learn the entity model before they query; it describes exactly what the
PRIP answers: the ``Products`` entity set with its checksums, content date, production
type and footprints, the typed attribute collections a ``$filter`` reaches through
``any``, and the ``OData.CSC.Intersects`` function a footprint filter calls. Static text:
the model does not change per mission (mission metadata are attributes, not properties).
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "OData.CSC"
ATTRIBUTE_TYPES = ("String", "Integer", "Double", "Boolean", "DateTimeOffset")
_EDM = {
    "String": "Edm.String",
    "Integer": "Edm.Int64",
    "Double": "Edm.Double",
    "Boolean": "Edm.Boolean",
    "DateTimeOffset": "Edm.DateTimeOffset",
}


def service_document(base: str) -> dict[str, Any]:
    """The OData service document: the entity sets under ``base``."""
    return {
        "@odata.context": f"{base}/$metadata",
        "value": [
            {"name": "Products", "kind": "EntitySet", "url": "Products"},
            {"name": "Subscriptions", "kind": "EntitySet", "url": "Subscriptions"},
        ],
    }


def _attribute_types() -> str:
    derived = "\n".join(
        f'      <EntityType Name="{kind}Attribute" BaseType="{NAMESPACE}.Attribute">\n'
        f'        <Property Name="Value" Type="{edm}"/>\n'
        f"      </EntityType>"
        for kind, edm in _EDM.items()
    )
    return (
        '      <EntityType Name="Attribute" Abstract="true">\n'
        '        <Key><PropertyRef Name="Name"/></Key>\n'
        '        <Property Name="Name" Type="Edm.String" Nullable="false"/>\n'
        '        <Property Name="ValueType" Type="Edm.String" Nullable="false"/>\n'
        "      </EntityType>\n" + derived
    )


def _collections() -> str:
    pad = " " * 8
    lines = [f'{pad}<NavigationProperty Name="Attributes" Type="Collection({NAMESPACE}.Attribute)"/>']
    lines += [
        f'{pad}<NavigationProperty Name="{kind}Attributes" Type="Collection({NAMESPACE}.{kind}Attribute)"/>'
        for kind in ATTRIBUTE_TYPES
    ]
    return "\n".join(lines)


def _subscription_types() -> str:
    """Subscriptions (CDSE's model) and the notifications a push POSTs or a pull Read answers."""
    return f"""      <EnumType Name="SubscriptionStatus">
        <Member Name="running" Value="0"/>
        <Member Name="paused" Value="1"/>
        <Member Name="cancelled" Value="2"/>
      </EnumType>
      <EnumType Name="SubscriptionEvent">
        <Member Name="created" Value="0"/>
      </EnumType>
      <EnumType Name="SubscriptionType">
        <Member Name="push" Value="0"/>
        <Member Name="pull" Value="1"/>
      </EnumType>
      <EntityType Name="Subscription">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Status" Type="{NAMESPACE}.SubscriptionStatus"/>
        <Property Name="SubscriptionEvent" Type="{NAMESPACE}.SubscriptionEvent"/>
        <Property Name="FilterParam" Type="Edm.String" Nullable="false"/>
        <Property Name="SubscriptionType" Type="{NAMESPACE}.SubscriptionType"/>
        <Property Name="NotificationEndpoint" Type="Edm.String"/>
        <Property Name="NotificationEpUsername" Type="Edm.String"/>
        <Property Name="SubmissionDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="LastNotificationDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="Mission" Type="Edm.String"/>
        <Property Name="Owner" Type="Edm.String"/>
        <Property Name="PendingNotifications" Type="Edm.Int64"/>
        <Property Name="DeliveredNotifications" Type="Edm.Int64"/>
        <Property Name="FailedNotifications" Type="Edm.Int64"/>
      </EntityType>
      <ComplexType Name="Notification">
        <Property Name="SubscriptionEvent" Type="{NAMESPACE}.SubscriptionEvent"/>
        <Property Name="SubscriptionId" Type="Edm.Guid"/>
        <Property Name="ProductId" Type="Edm.Guid"/>
        <Property Name="ProductName" Type="Edm.String"/>
        <Property Name="NotificationDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="AckId" Type="Edm.String"/>
        <NavigationProperty Name="value" Type="{NAMESPACE}.Product"/>
      </ComplexType>"""


def metadata_xml() -> str:
    """The CSDL document of the PRIP."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{NAMESPACE}">
      <EnumType Name="ProductionType">
        <Member Name="systematic_production" Value="0"/>
        <Member Name="on-demand default" Value="1"/>
        <Member Name="on-demand non-default" Value="2"/>
      </EnumType>
      <ComplexType Name="Checksum">
        <Property Name="Algorithm" Type="Edm.String"/>
        <Property Name="Value" Type="Edm.String"/>
        <Property Name="ChecksumDate" Type="Edm.DateTimeOffset" Precision="3"/>
      </ComplexType>
      <ComplexType Name="TimeRange">
        <Property Name="Start" Type="Edm.DateTimeOffset" Precision="6"/>
        <Property Name="End" Type="Edm.DateTimeOffset" Precision="6"/>
      </ComplexType>
      <EntityType Name="Product" HasStream="true">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Name" Type="Edm.String" Nullable="false"/>
        <Property Name="ContentType" Type="Edm.String"/>
        <Property Name="ContentLength" Type="Edm.Int64"/>
        <Property Name="OriginDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="PublicationDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="ModificationDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="EvictionDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="Online" Type="Edm.Boolean"/>
        <Property Name="Checksum" Type="Collection({NAMESPACE}.Checksum)"/>
        <Property Name="ContentDate" Type="{NAMESPACE}.TimeRange"/>
        <Property Name="ProductionType" Type="{NAMESPACE}.ProductionType"/>
        <Property Name="Footprint" Type="Edm.Geography" SRID="4326"/>
        <Property Name="GeoFootprint" Type="Edm.String"/>
{_collections()}
      </EntityType>
{_attribute_types()}
{_subscription_types()}
      <Function Name="Intersects" IsBound="false">
        <Parameter Name="area" Type="Edm.Geography"/>
        <ReturnType Type="Edm.Boolean"/>
      </Function>
      <EntityContainer Name="Container">
        <EntitySet Name="Products" EntityType="{NAMESPACE}.Product"/>
        <EntitySet Name="Subscriptions" EntityType="{NAMESPACE}.Subscription"/>
        <FunctionImport Name="Intersects" Function="{NAMESPACE}.Intersects"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""
