"""The Slurm facilities the Slurm tests add to the SKY mission (tests/execution, tests/e2e)."""

#: Three Slurm facilities added to the SKY mission: one with the default time limit, one
#: whose jobs may run one minute only, one on the partition of one-minute jobs (where a
#: step's default time limit can never start).
SLURM_FACILITIES = """facilities:
  cluster:
    backend: slurm
    storage_url: file://${PROSEO_DATA}/SKY-cluster
    scratch_path: ${PROSEO_SCRATCH}/SKY-cluster
    slurm:
      shared_dir: ${PROSEO_SLURM_SHARED}
      partition: debug
      poll_interval: 1 s
  cluster_1min:
    backend: slurm
    storage_url: file://${PROSEO_DATA}/SKY-cluster
    scratch_path: ${PROSEO_SCRATCH}/SKY-cluster
    slurm:
      shared_dir: ${PROSEO_SLURM_SHARED}
      time_limit: 1 min
      poll_interval: 2 s
  cluster_short:
    backend: slurm
    storage_url: file://${PROSEO_DATA}/SKY-cluster
    scratch_path: ${PROSEO_SCRATCH}/SKY-cluster
    slurm:
      shared_dir: ${PROSEO_SLURM_SHARED}
      partition: short
      poll_interval: 1 s
      queue_timeout: 2 h
"""
