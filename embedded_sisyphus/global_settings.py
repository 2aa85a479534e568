"""Settings of the embedded engine, named as in Sisyphus' ``global_settings`` (``gs``).

Only the keys that change hashes, the directory layout or the local scheduling exist here. As in
Sisyphus, a ``settings.py`` in the working directory (or the files in ``SIS_GLOBAL_SETTINGS_FILE``)
is executed into this module, and ``SIS_<KEY>`` environment variables override single keys.
"""
from __future__ import annotations

import ast
import os

from .hash import short_hash

BASE_DIR = os.getcwd()
WORK_DIR = "work"
ALIAS_DIR = "alias"
OUTPUT_DIR = "output"
ALIAS_AND_OUTPUT_SUBDIR = ""
RECIPE_PREFIX = "recipe"
FINISHED_LOG = "log/finished.log"
SIS_HASH = short_hash

JOB_OUTPUT = "output"
JOB_INPUT = "input"
JOB_WORK_DIR = "work"
JOB_SAVE = "job.save"
JOB_INFO = "info"
JOB_FINISHED_MARKER = "finished"
PLOGGING_FILE = "usage"
TEST_DIR = "tests"  # Sisyphus' constant: where its own unit tests find their recipes (relative to its source)
INCLUDE_CREATOR_STATE = False  # pickle a path's creator job into job.save (Sisyphus' setting; default: absolute path)
CACHE_FINISHED_RESULTS = False  # keep "this job/path is finished" answers in finished_results_cache
CACHE_FINISHED_RESULTS_PATH = "finished_results_cache.pkl"

#: Seconds between two scheduling rounds of the local manager while job states change (it also wakes up at once
#: when one of its tasks ends).
WAIT_PERIOD_BETWEEN_CHECKS = 0.5
#: While nothing changes (only long tasks run), the wait doubles from WAIT_PERIOD_BETWEEN_CHECKS up to this many
#: seconds: an idle manager costs almost no CPU, and a task that ends still wakes it at once.
WAIT_PERIOD_IDLE_MAX = 10.0

#: Stop a task that runs longer than its ``rqmt["time"]`` (hours) and mark it as failed, as a cluster would.
#: Set False (or env ``SIS_LOCAL_ENFORCE_TIME_RQMT=False``) when this machine is much slower than the one the
#: requirements were written for.
LOCAL_ENFORCE_TIME_RQMT = True
#: Seconds a task stopped for time gets to end after SIGTERM before its process group is killed.
LOCAL_STOP_GRACE_SECONDS = 10.0

#: Local resources; None means "what this machine has".
LOCAL_CPUS = None
LOCAL_MEM_GB = None
LOCAL_GPUS = None


def engine():
    """Real Sisyphus asks ``settings.engine()`` for its engine; the embedded one is always local."""
    return None


def _apply_environment_overrides() -> None:
    for key, value in os.environ.items():
        if not key.startswith("SIS_") or key == "SIS_GLOBAL_SETTINGS_FILE":
            continue
        name = key[len("SIS_"):]
        try:
            globals()[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            globals()[name] = value


def load_settings_files() -> None:
    files = os.environ.get("SIS_GLOBAL_SETTINGS_FILE", "settings.py")
    for filename in files.split(":"):
        if filename and os.path.isfile(filename):
            with open(filename) as f:
                exec(compile(f.read(), filename, "exec"), globals())
    _apply_environment_overrides()


load_settings_files()
