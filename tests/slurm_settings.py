# settings.py for the real Sisyphus on the single-node SLURM cluster of tests/single_node_slurm.py (copied into the
# setup directory as settings.py by tests/test_real_sisyphus_slurm.py; the README's "SLURM on one machine" steps use
# it as it is). Every task, mini tasks included, goes through sbatch.
import os

NODE_CPUS = os.cpu_count()  # the node tests/single_node_slurm.py declares: this machine's cores,
NODE_MEM_GB = 8             # 8 GB (RealMemory=8192) and no GPU


def engine():
    # imported here, not at the top: Sisyphus executes settings.py while its own modules are still being imported
    import sisyphus.engine
    from sisyphus.simple_linux_utility_for_resource_management_engine import \
        SimpleLinuxUtilityForResourceManagementEngine

    return sisyphus.engine.EngineSelector(
        engines={"short": SimpleLinuxUtilityForResourceManagementEngine(default_rqmt={"cpu": 1, "mem": 1, "time": 1}),
                 "long": SimpleLinuxUtilityForResourceManagementEngine(default_rqmt={"cpu": 1, "mem": 2, "time": 1})},
        default_engine="long")


def check_engine_limits(current_rqmt, task):
    """Shrink requirements to the one node (SLURM rejects or never schedules a job larger than every node)."""
    current_rqmt["cpu"] = min(current_rqmt.get("cpu", 1), NODE_CPUS)
    current_rqmt["mem"] = min(current_rqmt.get("mem", 1), NODE_MEM_GB)
    current_rqmt["gpu"] = 0
    return current_rqmt


RETURNN_DEVICE = "cpu"  # RETURNN tasks ask for no GPU (the default under the real Sisyphus is "gpu")
# The tasks import the recipes from PYTHONPATH where the package is not pip-installed; Sisyphus cleans the task
# environment before a task runs, so keep it.
DEFAULT_ENVIRONMENT_KEEP = DEFAULT_ENVIRONMENT_KEEP | {"PYTHONPATH"}  # noqa: F821 (Sisyphus' default)
# Threads follow the task's CPU requirement (Sisyphus' default is 1 for every task), as under the embedded engine:
# the same thread count gives bit-identical trainings under both engines.
DEFAULT_ENVIRONMENT_SET = dict(DEFAULT_ENVIRONMENT_SET,  # noqa: F821
                               OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK}", MKL_NUM_THREADS="${SLURM_CPUS_PER_TASK}")
# One machine, one file system: no need to wait for NFS caches (the defaults are 20-60 s per step).
WAIT_PERIOD_BETWEEN_CHECKS = 2
WAIT_PERIOD_JOB_FS_SYNC = 1
WAIT_PERIOD_MTIME_OF_INPUTS = 1
WAIT_PERIOD_CACHE = 1
JOB_AUTO_CLEANUP = False  # keep the work folders (the test compares outputs; a user may want to look inside)
