"""Audio in the container the models read it from: ``OggZipDataset`` zips.

Why: the models consume raw audio (``audio_features`` = 16 kHz waveform, features computed inside the model);
the zip keeps the compressed FLACs (small, lossless).
"""
from __future__ import annotations

import os
import zipfile
from typing import Sequence


from .corpus import CorpusEntry


def write_ogg_zip(entries: Sequence[CorpusEntry], out_zip: str) -> None:
    """``<name>/<utt>.flac`` + ``<name>.txt`` where name is the zip's stem (``zip_audio_files_have_name_as_prefix``)."""
    name = os.path.splitext(os.path.basename(out_zip))[0]  # the same rule OggZipDataset uses
    meta = []
    tmp = out_zip + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for e in entries:
            arcname = os.path.basename(e.audio)
            zf.write(e.audio, f"{name}/{arcname}")
            meta.append({"text": e.text, "duration": e.duration, "file": arcname, "seq_name": e.seq_tag})
        zf.writestr(f"{name}.txt", repr(meta) + "\n", compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, out_zip)
