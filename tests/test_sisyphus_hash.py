"""The embedded engine must hash exactly like the real Sisyphus (shared/sisyphus_reference)."""
import json
import os
import sys

import pytest

from librispeech_joint_training_given_alignments.embedded_sisyphus import reset_graph
from librispeech_joint_training_given_alignments.embedded_sisyphus.hash import sis_hash_helper, short_hash
from librispeech_joint_training_given_alignments.sisyphus_api import tk

REFERENCE_DIR = os.environ.get(
    "SISYPHUS_REFERENCE_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "sisyphus_reference"),
)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "reference_modules"))
sys.path.insert(0, REFERENCE_DIR)


def _load(name):
    path = os.path.join(REFERENCE_DIR, name)
    if not os.path.exists(path):
        pytest.fail(f"reference vectors missing: {path} (set SISYPHUS_REFERENCE_DIR)")
    with open(path) as f:
        return json.load(f)["cases"]


HASH_CASES = _load("hash_vectors.json")
JOB_CASES = _load("job_vectors.json")


def _scope():
    import hash_cases

    scope = {k: getattr(hash_cases, k) for k in dir(hash_cases) if not k.startswith("__")}
    scope["Path"] = tk.Path
    return scope


@pytest.mark.parametrize("case", HASH_CASES, ids=[c["expr"][:40] for c in HASH_CASES])
def test_hash_vector(case):
    value = eval(case["expr"], _scope())
    assert sis_hash_helper(value) == case["sis_hash_helper_latin1"].encode("latin-1")
    assert short_hash(value) == case["short_hash"]


@pytest.fixture
def job_scope():
    reset_graph()
    import hash_jobs

    scope = _scope()
    scope.update(MakeText=hash_jobs.MakeText, Train=hash_jobs.Train, TrainV2=hash_jobs.TrainV2, tk=tk,
                 sis_hash_helper=sis_hash_helper)
    scope["cfg"] = {"optimizer": {"class": "adam", "eps": 1e-08}, "batch": [1000, 2000]}
    scope["mk"] = hash_jobs.MakeText("hello", repeat=3)
    yield scope
    reset_graph()


@pytest.mark.parametrize("case", JOB_CASES, ids=[c["construct"][:60] for c in JOB_CASES])
def test_job_vector(case, job_scope):
    value = eval(case["construct"], job_scope)
    if "job_id" in case:
        assert value.job_id() == case["job_id"]
    else:
        assert value == case["sis_hash_helper_latin1"].encode("latin-1")


def test_singleton_and_deepcopy(job_scope):
    MakeText = job_scope["MakeText"]
    args = {"text": ["a"]}
    first = MakeText(args)
    args["text"].append("b")  # the job got a deep copy
    assert first.text == {"text": ["a"]}
    again = MakeText({"text": ["a"]}, repeat=1)
    assert again is first
    assert MakeText({"text": ["a", "b"]}) is not first


def test_rqmt_does_not_change_id(job_scope):
    mk = job_scope["mk"]
    before = mk.job_id()
    mk.set_rqmt("run", {"cpu": 4, "mem": 8})
    assert job_scope["MakeText"]("hello", repeat=3).job_id() == before


def test_path_hash_overwrite_and_join(job_scope):
    mk = job_scope["mk"]
    assert sis_hash_helper(mk.out_file.join_right("sub")) == (
        b"(Path, (tuple, (str, '" + mk.job_id().encode() + b"/output'), (str, 'out.txt/sub')))"
    )
    p = mk.out_file.copy()
    p.hash_overwrite = "SOME_NAME"
    assert sis_hash_helper(p) == b"(Path, (tuple, (NoneType), (str, 'SOME_NAME')))"


def test_job_class_hash_uses_metaclass_name(job_scope):
    import hash_jobs

    assert sis_hash_helper(hash_jobs.MakeText) == b"(JobSingleton, (tuple, (str, 'hash_jobs'), (str, 'MakeText')))"
