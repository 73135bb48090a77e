"""The processor wrapper: stage inputs, write the Job Order, run, collect, upload, report.

Runs inside slim processor images and as a local subprocess: no Airflow, no database.
Entry points: ``proseo-wrapper run SPEC.json`` (:mod:`proseo.wrapper.main`) and
:func:`proseo.wrapper.job.run_job`; processors read their Job Order with
:func:`proseo.wrapper.joborder.read_job_order`. Importing this package imports nothing
else, so a processor reading its Job Order starts fast.
"""
