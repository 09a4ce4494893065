#!/usr/bin/env bash
# System packages of the sweep tests: Debian's slurm-wlm (slurmctld, slurmd, sbatch, ...) and
# munge, for the one-node Slurm cluster tests/slurm_cluster.py starts. Idempotent: apt-get runs
# only when a program is missing, and only as root with apt-get; otherwise the Slurm tests say
# why they skip (or fail, under EVALKIT_REQUIRE_SLURM=1).
set -uo pipefail
missing=0
for prog in slurmctld slurmd sbatch squeue scancel munged munge; do
  command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] || missing=1
done
if [ "$missing" = 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing slurm-wlm and munge for the sweep tests ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null) \
    || echo "WARNING: could not install slurm-wlm/munge; the sweep tests against Slurm will be SKIPPED" >&2
else
  echo "WARNING: slurm-wlm/munge are not installed and cannot be installed here (needs root with apt-get):" \
       "the sweep tests against Slurm will be SKIPPED (run scripts/install_slurm.sh as root;" \
       "EVALKIT_REQUIRE_SLURM=1 makes a missing Slurm fail them)" >&2
fi
exit 0
