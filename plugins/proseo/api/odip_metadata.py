"""The ODIP's OData service document and ``$metadata`` (CSDL XML, namespace ``OData.CSC``).

Two entity sets: ``Workflows`` (what may be ordered, read from the mission files) and
``ProductionOrder`` (the orders), the bound actions ``Order`` (on the set) and
``Cancel`` (on an order), and the navigation ``Product`` to the PRIP's Product type.
Static text, like the PRIP's: the model is the same for every mission.
"""

from __future__ import annotations

from typing import Any

from proseo.api.prip_metadata import NAMESPACE

N = NAMESPACE


def service_document(base: str) -> dict[str, Any]:
    """The OData service document: the entity sets under ``base``."""
    return {
        "@odata.context": f"{base}/$metadata",
        "value": [
            {"name": "Workflows", "kind": "EntitySet", "url": "Workflows"},
            {"name": "ProductionOrder", "kind": "EntitySet", "url": "ProductionOrder"},
        ],
    }


def metadata_xml() -> str:
    """The CSDL document of the ODIP."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{N}">
      <EnumType Name="JobStatus">
        <Member Name="queued" Value="0"/>
        <Member Name="in_progress" Value="1"/>
        <Member Name="completed" Value="2"/>
        <Member Name="failed" Value="3"/>
        <Member Name="cancelled" Value="4"/>
      </EnumType>
      <ComplexType Name="TimeRange">
        <Property Name="Start" Type="Edm.DateTimeOffset" Precision="6"/>
        <Property Name="End" Type="Edm.DateTimeOffset" Precision="6"/>
      </ComplexType>
      <ComplexType Name="InputProductReference">
        <Property Name="Reference" Type="Edm.String"/>
        <Property Name="ContentDate" Type="{N}.TimeRange"/>
      </ComplexType>
      <ComplexType Name="WorkflowOption">
        <Property Name="Name" Type="Edm.String" Nullable="false"/>
        <Property Name="Description" Type="Edm.String"/>
        <Property Name="Type" Type="Edm.String"/>
        <Property Name="Default" Type="Edm.Untyped"/>
        <Property Name="Value" Type="Edm.Untyped"/>
      </ComplexType>
      <EntityType Name="Workflow">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Name" Type="Edm.String" Nullable="false"/>
        <Property Name="DisplayName" Type="Edm.String"/>
        <Property Name="Description" Type="Edm.String"/>
        <Property Name="Documentation" Type="Edm.String"/>
        <Property Name="InputProductType" Type="Edm.String"/>
        <Property Name="InputProductTypes" Type="Collection(Edm.String)"/>
        <Property Name="OutputProductType" Type="Edm.String"/>
        <Property Name="WorkflowVersion" Type="Edm.String"/>
        <Property Name="WorkflowOptions" Type="Collection({N}.WorkflowOption)"/>
      </EntityType>
      <EntityType Name="ProductionOrder">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Name" Type="Edm.String"/>
        <Property Name="Status" Type="{N}.JobStatus" Nullable="false"/>
        <Property Name="StatusMessage" Type="Edm.String"/>
        <Property Name="OrderOutputSize" Type="Edm.Int64"/>
        <Property Name="SubmissionDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="EstimatedDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="CompletedDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="EvictionDate" Type="Edm.DateTimeOffset" Precision="3"/>
        <Property Name="Priority" Type="Edm.Int64"/>
        <Property Name="InputProductReference" Type="{N}.InputProductReference"/>
        <Property Name="WorkflowId" Type="Edm.Guid"/>
        <Property Name="WorkflowName" Type="Edm.String"/>
        <Property Name="WorkflowOptions" Type="Collection({N}.WorkflowOption)"/>
        <Property Name="NotificationEndpoint" Type="Edm.String"/>
        <Property Name="NotificationEpUsername" Type="Edm.String"/>
        <Property Name="NotificationEpPassword" Type="Edm.String"/>
        <NavigationProperty Name="Product" Type="{N}.Product"/>
      </EntityType>
      <EntityType Name="Product" HasStream="true">
        <Key><PropertyRef Name="Id"/></Key>
        <Property Name="Id" Type="Edm.Guid" Nullable="false"/>
        <Property Name="Name" Type="Edm.String" Nullable="false"/>
        <Property Name="ContentLength" Type="Edm.Int64"/>
      </EntityType>
      <Action Name="Order" IsBound="true">
        <Parameter Name="ProductionOrder" Type="Collection({N}.ProductionOrder)" Nullable="false"/>
        <Parameter Name="WorkflowName" Type="Edm.String"/>
        <Parameter Name="WorkflowId" Type="Edm.Guid"/>
        <Parameter Name="InputProductReference" Type="{N}.InputProductReference"/>
        <Parameter Name="WorkflowOptions" Type="Collection({N}.WorkflowOption)"/>
        <Parameter Name="Priority" Type="Edm.Int64"/>
        <Parameter Name="NotificationEndpoint" Type="Edm.String"/>
        <Parameter Name="NotificationEpUsername" Type="Edm.String"/>
        <Parameter Name="NotificationEpPassword" Type="Edm.String"/>
        <Parameter Name="Name" Type="Edm.String"/>
        <ReturnType Type="{N}.ProductionOrder"/>
      </Action>
      <Action Name="Cancel" IsBound="true">
        <Parameter Name="ProductionOrder" Type="{N}.ProductionOrder" Nullable="false"/>
        <ReturnType Type="{N}.ProductionOrder"/>
      </Action>
      <EntityContainer Name="Container">
        <EntitySet Name="Workflows" EntityType="{N}.Workflow"/>
        <EntitySet Name="ProductionOrder" EntityType="{N}.ProductionOrder"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""
