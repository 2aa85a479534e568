"""PyTorch (RETURNN torch backend) networks: Glow-TTS, joint TTS + aux phoneme loss, CTC ASR.

Entry modules for RETURNN configs (each provides ``get_model``, ``train_step``, ``forward_step`` and
forward callback classes):

* :mod:`.tts_model` -- Glow-TTS family (MAS or given alignment, optional aux phoneme head, frozen mode)
* :mod:`.asr_model` -- CTC ASR (BLSTM or Conformer) on log-mel features or on the frozen Glow-TTS latent
"""
