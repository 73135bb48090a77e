"""Pages in Airflow's UI: orders with progress, an order's job-step graph and input reasons,
a product browser and product lineage (server-rendered HTML under ``/proseo/ui/``).

:func:`proseo.ui.pages.install` adds them to the /proseo app; the plugin's
``external_views`` link Airflow's navigation to them.
"""
