"""Setup config for the embedded default experiment (run it with the embedded engine or ``sis manager``)."""
from librispeech_joint_training_given_alignments.default_experiment import run_all


def py():
    run_all()
