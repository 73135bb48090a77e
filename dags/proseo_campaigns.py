"""Airflow DAG file: reprocessing campaigns, a pass over every running campaign.

The campaigns and their state are in the catalogue; see proseo.orchestration.campaigns.
"""

from proseo.orchestration.campaigns import build_campaigns

build_campaigns(globals())
