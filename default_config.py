"""Setup config for the embedded default experiment (run it with the embedded engine or ``sis manager``)."""
from librispeech_joint_training_given_alignments.default_experiment import run_all
from librispeech_joint_training_given_alignments.sisyphus_api import gs

# The laptop-sized models are too small to use two threads well: on a 2-core machine two 1-thread RETURNN jobs (e.g.
# the log-mel recogniser beside the alignment model, a synthesis beside a training) finish sooner than the same
# jobs one after the other with two threads each.
gs.RETURNN_CPUS = 1


def py():
    run_all()
