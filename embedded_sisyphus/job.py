"""Jobs: hashed, singleton units of work, with the construction semantics of Sisyphus' ``JobSingleton``.

Everything that decides a job id lives here (argument parsing, ``hash()``, ``__sis_hash_exclude__``,
``__sis_version__``); the on-disk state of a job is handled by :mod:`.job_dir`.
"""
from __future__ import annotations

import copy
import inspect
import logging
import os
import re
import subprocess
from typing import Any, Dict, Iterable, List, Optional, Set

from . import global_settings as gs
from .block import active_blocks
from .job_path import AbstractPath, Path, Variable
from .task import Task

created_jobs: Dict[str, "Job"] = {}
_VALID_HASH = re.compile(r"^[0-9A-Za-z./_-]+$")
_VALID_TAG = re.compile(r"^[-._0-9A-Za-z]+$")


def job_id_for(cls: type, sis_hash: str) -> str:
    module = cls.__module__
    prefix = gs.RECIPE_PREFIX + "."
    if module.startswith(prefix):
        module = module[len(prefix):]
    return f"{module.replace('.', '/')}/{cls.__name__}.{sis_hash}"


class JobSingleton(type):
    """Builds the id from the arguments before ``__init__`` and returns the existing job for a known id."""

    def __call__(cls, *args: Any, **kwargs: Any) -> "Job":
        tags = kwargs.pop("sis_tags", None)
        if tags is not None:
            for tag in tags:
                assert _VALID_TAG.match(tag), f"invalid character in sis tag {tag!r}"
        parsed_args = inspect.getcallargs(cls.__init__, None, *args, **kwargs)
        del parsed_args["self"]
        sis_id = job_id_for(cls, cls._sis_hash_static(parsed_args))
        job = created_jobs.get(sis_id)
        if job is None:
            job = cls.__new__(cls)
            job._sis_init(*copy.deepcopy((args, kwargs, parsed_args)), sis_id=sis_id, tags=tags)
            created_jobs[sis_id] = job
        for block in active_blocks():
            block.add_job(job)
        return job


class Job(metaclass=JobSingleton):
    __sis_hash_exclude__: Dict[str, Any] = {}
    __sis_hash_overwrite__: List[tuple] = []
    __sis_version__: Any = None

    # ------------------------------------------------------------------ identity
    @classmethod
    def hash(cls, parsed_args: Dict[str, Any]) -> str:
        exclude = cls.__sis_hash_exclude__
        d = {k: v for k, v in parsed_args.items() if k not in exclude or exclude[k] != v}
        for key, value, replacement in cls.__sis_hash_overwrite__:
            if key in d and d[key] == value:
                d[key] = replacement
        if cls.__sis_version__ is None:
            return gs.SIS_HASH(d)
        return gs.SIS_HASH((d, cls.__sis_version__))

    @classmethod
    def _sis_hash_static(cls, parsed_args: Dict[str, Any]) -> str:
        h = cls.hash(parsed_args)
        assert isinstance(h, str) and _VALID_HASH.match(h), f"{cls.__name__}.hash() returned invalid {h!r}"
        return h

    def _sis_init(self, args: tuple, kwargs: dict, parsed_args: dict, *, sis_id: str, tags: Optional[Iterable[str]]):
        self._sis_id_cache = sis_id
        self._sis_kwargs = parsed_args
        self._sis_tags = set(tags or ())
        self._sis_aliases: Set[str] = set()
        self._sis_alias_prefixes: Set[str] = set()
        self._sis_outputs: Dict[str, AbstractPath] = {}
        self._sis_output_dirs: Set[str] = set()
        self._sis_rqmt: Dict[str, Dict[str, Any]] = {}
        self._sis_environment: Dict[str, str] = {}
        self._sis_vis_name: Optional[str] = None
        self._sis_keep_value: Optional[int] = None
        self._sis_is_held = False
        self._sis_extra_inputs: Set[AbstractPath] = set()
        self._sis_updated = False
        self.__init__(*args, **kwargs)
        self._sis_inputs: Set[AbstractPath] = set(
            p for p in extract_paths((self.__dict__, args, kwargs)) if p.creator is not self
        )
        if gs.ALIAS_AND_OUTPUT_SUBDIR:
            self._sis_alias_prefixes.add(gs.ALIAS_AND_OUTPUT_SUBDIR)

    def _sis_id(self) -> str:
        return self._sis_id_cache

    def job_id(self) -> str:
        return self._sis_id_cache

    def _sis_hash(self) -> bytes:
        logging.debug("job %s used as a hash value; its id is hashed", self._sis_id_cache)
        return self._sis_id_cache.encode()

    def __deepcopy__(self, memo: dict) -> "Job":
        return self

    def __repr__(self) -> str:
        return f"Job<{gs.WORK_DIR}/{self._sis_id_cache}>"

    def __lt__(self, other: "Job") -> bool:
        return self._sis_id() < other._sis_id()

    # ------------------------------------------------------------------ outputs and inputs
    def output_path(self, filename: str, directory: bool = False, cached: bool = False) -> Path:
        if filename in self._sis_outputs:
            logging.warning("%s: output %s added twice", self._sis_id(), filename)
            return self._sis_outputs[filename]
        path = Path(filename, creator=self, cached=cached)
        self._sis_outputs[filename] = path
        if directory:
            self._sis_output_dirs.add(filename)
        return path

    def output_var(self, filename: str, pickle: bool = False, backup: Any = None) -> Variable:
        if filename in self._sis_outputs:
            return self._sis_outputs[filename]
        var = Variable(filename, creator=self, pickle=pickle, backup=backup)
        self._sis_outputs[filename] = var
        return var

    def add_input(self, path: AbstractPath) -> AbstractPath:
        assert isinstance(path, AbstractPath), f"add_input needs a Path, got {path!r}"
        self._sis_extra_inputs.add(path)
        self._sis_inputs.add(path)
        return path

    def update(self) -> None:
        """Called once all current inputs exist; may add inputs (dynamic graphs)."""

    def path_available(self, path: AbstractPath) -> bool:
        return self._sis_finished()

    def _sis_finished(self) -> bool:
        from .job_dir import is_finished

        return is_finished(self)

    def _sis_setup_directory(self) -> None:
        """Create ``work/<id>/`` (input links, output folders, ``job.save``, ``info``) as the manager does before the
        first task runs (Sisyphus' method name)."""
        from .job_dir import setup_job_directory

        setup_job_directory(self)

    def _sis_dependencies(self) -> Set["Job"]:
        return {p.creator for p in self._sis_inputs if p.creator is not None}

    # ------------------------------------------------------------------ scheduling hints
    def tasks(self) -> Iterable[Task]:
        yield Task("run")

    def _sis_tasks(self) -> List[Task]:
        tasks = list(self.tasks())
        for task in tasks:
            task.set_job(self)
        return tasks

    def task_rqmt(self, task: Task) -> Dict[str, Any]:
        rqmt = task.rqmt()
        override = self._sis_rqmt.get(task.name())
        if override is not None:
            rqmt.update(override)
        return rqmt

    def set_rqmt(self, task_name: str, rqmt: Dict[str, Any]) -> "Job":
        self._sis_rqmt[task_name] = dict(rqmt)
        return self

    def update_rqmt(self, task_name: str, rqmt: Dict[str, Any]) -> "Job":
        self._sis_rqmt.setdefault(task_name, {}).update(rqmt)
        return self

    def set_env(self, key: str, value: str, verbatim: bool = True) -> None:
        self._sis_environment[key] = value

    def hold(self) -> None:
        self._sis_is_held = True

    def info(self) -> Optional[str]:
        return None

    def completed_fraction(self) -> Optional[float]:
        return None

    # ------------------------------------------------------------------ naming
    def add_alias(self, alias: str) -> "Job":
        from .names import check_name

        prefix = gs.ALIAS_AND_OUTPUT_SUBDIR
        self._sis_aliases.add(check_name("alias", os.path.join(prefix, alias) if prefix else alias))
        return self

    def get_aliases(self) -> Set[str]:
        return set(self._sis_aliases)

    def set_vis_name(self, name: str) -> "Job":
        self._sis_vis_name = name
        return self

    def get_vis_name(self) -> Optional[str]:
        return self._sis_vis_name

    def set_keep_value(self, value: int) -> "Job":
        self._sis_keep_value = value
        return self

    keep_value = set_keep_value

    @property
    def tags(self) -> Set[str]:
        return set(self._sis_tags)

    def set_attrs(self, attrs: Dict[str, Any]) -> None:
        for key, value in attrs.items():
            if key != "self":
                setattr(self, key, value)

    def work_path(self) -> str:
        saved = self.__dict__.get("_sis_saved_work_path")
        if saved is not None:  # unpickled in a worker: the directory it was saved in
            return saved
        return os.path.join(gs.BASE_DIR, gs.WORK_DIR, self._sis_id())

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_sis_saved_work_path"] = self.work_path()
        return state

    def _sis_path(self, *parts: str) -> str:
        return os.path.join(self.work_path(), *parts)

    def sh(self, command: str, capture_output: bool = False, **kwargs: Any) -> Optional[str]:
        command = command.format(**self.__dict__, **kwargs)
        logging.info("run: %s", command)
        full = ["/bin/bash", "-c", "set -ueo pipefail && " + command]
        if capture_output:
            return subprocess.check_output(full).decode()
        subprocess.check_call(full)
        return None


def extract_paths(obj: Any) -> List[AbstractPath]:
    """Every path reachable inside ``obj``; a job's dependencies are found this way, as in Sisyphus."""
    found: List[AbstractPath] = []
    seen: Set[int] = set()
    stack = [obj]
    while stack:
        value = stack.pop()
        if id(value) in seen or value is None or isinstance(value, (str, bytes, int, float, bool, complex)):
            continue
        seen.add(id(value))
        if isinstance(value, AbstractPath):
            found.append(value)
        elif isinstance(value, Job) or inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
            continue
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend(value)
        elif hasattr(value, "__dict__") or hasattr(value, "__slots__"):
            if hasattr(value, "__dict__"):
                stack.append(vars(value))
            for slot in getattr(value, "__slots__", ()) or ():
                stack.append(getattr(value, slot, None))
    return found
