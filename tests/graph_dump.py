"""Builds one of the project's graphs and writes every job id with its aliases and outputs, and every target, as JSON.

    python tests/graph_dump.py default|full OUT.json|- [--recipe-prefix]

Runs under either engine (whichever ``sisyphus_api`` picks: the real Sisyphus where it is installed), so the
real-Sisyphus tests compare the two engines' graphs on exactly the same listing. With ``--recipe-prefix`` the
recipes are imported as ``recipe.<package>`` (a real Sisyphus setup's layout; needs ``recipe/<package>`` in cwd).
"""
import importlib
import json
import os
import sys

PACKAGE = "librispeech_joint_training_given_alignments"


def _path_key(path):
    creator = getattr(path, "creator", None)
    return [None if creator is None else creator.job_id(), path.path]


def dump(graph_name: str, recipe_prefix: bool = False) -> dict:
    prefix = "recipe." if recipe_prefix else ""
    if recipe_prefix and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    api = importlib.import_module(f"{prefix}{PACKAGE}.sisyphus_api")
    run_all = importlib.import_module(f"{prefix}{PACKAGE}.default_experiment").run_all
    setups = importlib.import_module(f"{prefix}{PACKAGE}.experiment_setup")
    run_all(setups.EMBEDDED if graph_name == "default" else setups.librispeech("/data/LibriSpeech", core_only=False))
    jobs = {}
    for job in api.tk.sis_graph.jobs():
        jobs[job.job_id()] = {
            "aliases": sorted(job.get_aliases() or ()),
            "outputs": sorted(p.path for p in job._sis_outputs.values()),
        }
    # unique: the real Sisyphus keeps one of two equal targets (same name and paths), the embedded engine both
    targets = sorted({json.dumps(
        ["report" if "Report" in type(t).__name__ else "output", t.name,
         sorted(_path_key(p) for p in getattr(t, "required_full_list", None) or t.required_paths())])
        for t in api.tk.sis_graph.targets})
    targets = [json.loads(t) for t in targets]
    return {"engine": "real" if api.USING_REAL_SISYPHUS else "embedded", "jobs": jobs, "targets": targets}


if __name__ == "__main__":
    result = dump(sys.argv[1], recipe_prefix="--recipe-prefix" in sys.argv[3:])
    if sys.argv[2] == "-":
        json.dump(result, sys.stdout, sort_keys=True)
    else:
        with open(sys.argv[2], "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
    print(f"{result['engine']}: {len(result['jobs'])} jobs, {len(result['targets'])} targets", file=sys.stderr)
