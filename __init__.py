"""Glow-TTS / joint TTS-ASR experiments with an auxiliary phoneme-reconstruction loss and given alignments.

The repository root is this package; see README.md.
"""

#: The name the package has in job ids and in RETURNN configs, however it was imported (installed, or as
#: ``recipe.librispeech_joint_training_given_alignments`` in a Sisyphus setup).
PACKAGE_NAME = "librispeech_joint_training_given_alignments"
