#!/usr/bin/env bash
# One rank of a distributed `mtl` run under SLURM: maps SLURM's task variables onto torchrun's (RANK, WORLD_SIZE,
# LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and runs mtl with the given arguments. srun starts one
# per task (tools/slurm_train.sbatch):
#   srun tools/slurm_rank.sh train configs/multi_fashion.yaml --set trainer.resume=auto
# MASTER_ADDR defaults to the job's first node, MASTER_PORT to 20000 + job id mod 20000; MTL to build/mtl.
set -euo pipefail
: "${SLURM_PROCID:?slurm_rank.sh: SLURM_PROCID is not set (start it with srun)}"
: "${SLURM_NTASKS:?slurm_rank.sh: SLURM_NTASKS is not set (start it with srun)}"
export RANK="$SLURM_PROCID" WORLD_SIZE="$SLURM_NTASKS" LOCAL_RANK="${SLURM_LOCALID:-0}"
per_node="${SLURM_NTASKS_PER_NODE:-$SLURM_NTASKS}"
export LOCAL_WORLD_SIZE="${per_node%%[(,]*}"   # "2(x3)" or "2,1" -> 2
if [ -z "${MASTER_ADDR:-}" ]; then
  MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
fi
export MASTER_ADDR MASTER_PORT="${MASTER_PORT:-$((20000 + ${SLURM_JOB_ID:-0} % 20000))}"
exec "${MTL:-$(dirname "$0")/../build/mtl}" "$@"
