"""The processor wrapper: stage inputs, write the Job Order, run, collect, upload, report.

Runs inside slim processor images and as a local subprocess: no Airflow, no database.
"""
