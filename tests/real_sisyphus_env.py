"""A virtual environment with the real Sisyphus (the vendored upstream tarball), cached between test runs.

It sees the project's own environment (its site-packages are added with ``site.addsitedir``), so the recipes import
exactly as under the embedded engine; only ``sisyphus`` (plus its dependencies ``psutil``, ``flask``, ``ipython``)
comes from this environment. PyPI's unrelated ``sisyphus`` is never installed; the tarball is installed unmodified.
"""
import hashlib
import os
import subprocess
import sys
import sysconfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR = os.environ.get("SISYPHUS_VENDOR_DIR", os.path.join(REPO, "..", "shared", "vendor"))
TARBALL = os.path.join(VENDOR, "sisyphus-21ba684.tar.gz")
CACHE = os.environ.get("REAL_SISYPHUS_VENV_CACHE", os.path.join(REPO, ".cache"))


def real_sisyphus_python() -> str:
    """The python of the cached environment, created (a minute, needs PyPI for the dependencies) if missing."""
    if not os.path.isfile(TARBALL):
        raise FileNotFoundError(f"the vendored Sisyphus tarball is missing: {TARBALL} (set SISYPHUS_VENDOR_DIR)")
    with open(TARBALL, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    venv = os.path.join(CACHE, f"real-sisyphus-{digest}")
    python = os.path.join(venv, "bin", "python")
    marker = os.path.join(venv, ".complete")
    if os.path.isfile(marker):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(purelib, "project_environment.pth"), "w") as f:
        f.write(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    subprocess.run([python, "-m", "pip", "install", "-q", TARBALL], check=True)
    check = subprocess.run([python, "-c", "import sisyphus.job, sisyphus.toolkit; print(sisyphus.__file__)"],
                           check=True, capture_output=True, text=True)
    assert venv in check.stdout, f"sisyphus imported from outside the environment: {check.stdout}"
    open(marker, "w").close()
    return python


if __name__ == "__main__":  # python tests/real_sisyphus_env.py: create (or find) the environment, print its `sis`
    print(os.path.join(os.path.dirname(real_sisyphus_python()), "sis"))
