"""Runs upstream Sisyphus unit test files, unmodified, with ``sisyphus.*`` mapped onto the embedded engine.

    python tests/upstream_sisyphus_alias.py SIS_SOURCE_DIR MODULE [MODULE ...]   (e.g. tests.delayed_ops_unittest)

``sisyphus`` and every ``sisyphus.<name>`` the embedded engine has (``delayed_ops``, ``hash``, ``job_path``,
``toolkit``, ``tools``, ...) become the embedded modules in ``sys.modules`` before the tests import them; a module
the engine lacks fails to import, as it would without the alias. Exit status 0 only if every test passed.
"""
import importlib
import os
import pkgutil
import sys
import unittest

ENGINE = "librispeech_joint_training_given_alignments.embedded_sisyphus"


def install_alias() -> None:
    engine = importlib.import_module(ENGINE)
    sys.modules["sisyphus"] = engine
    for info in pkgutil.iter_modules(engine.__path__):
        if info.name in ("__main__", "cli", "worker"):
            continue
        module = importlib.import_module(f"{ENGINE}.{info.name}")
        sys.modules[f"sisyphus.{info.name}"] = module
    sys.modules["sisyphus.global_settings"] = engine.gs


def main(argv):
    source_dir, modules = argv[0], argv[1:]
    install_alias()
    os.chdir(source_dir)
    sys.modules["sisyphus"].gs.BASE_DIR = os.getcwd()  # the engine's experiment dir is the cwd it started in
    sys.path.insert(0, source_dir)
    suite = unittest.defaultTestLoader.loadTestsFromNames(modules)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
