#!/usr/bin/env bash
# Debian's Slurm (slurmctld, slurmd, the client commands) and MUNGE for the Slurm backend's
# tests (run as root). The test fixture (proseo.devtools.slurm) writes its own slurm.conf and
# starts the daemons itself; the Debian services are not used. Idempotent and quiet: nothing
# happens when the commands are already installed.
set -euo pipefail
if command -v sbatch >/dev/null && command -v slurmctld >/dev/null \
    && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm slurmctld slurmd slurm-client munge >/dev/null
