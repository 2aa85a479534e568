"""sclite scoring jobs on a tiny corpus description."""

from librispeech_joint_training_given_alignments.data_prep.corpus import CorpusEntry, write_corpus_json
from librispeech_joint_training_given_alignments.jobs.scoring import (CorpusToStmJob, ScliteJob, SearchWordsToCtmJob,
                                                                      WerResult)
from librispeech_joint_training_given_alignments.sisyphus_api import tk


def test_sclite_wer(sis_setup):
    entries = [
        CorpusEntry("dev/1-2-0001/1-2-0001", "/x/a.flac", 1.5, 24000, "HELLO WORLD", "1", "2"),
        CorpusEntry("dev/1-2-0002/1-2-0002", "/x/b.flac", 2.0, 32000, "GOOD MORNING TO YOU", "1", "2"),
    ]
    write_corpus_json(str(sis_setup / "corpus.json"), "dev", entries, 16000)
    (sis_setup / "search_out.py").write_text(repr({
        "dev/1-2-0001/1-2-0001": "HELLO WORD",
        "dev/1-2-0002/1-2-0002": "GOOD MORNING YOU",
    }))
    corpus = tk.Path(str(sis_setup / "corpus.json"))
    stm = CorpusToStmJob(corpus).out_stm
    ctm = SearchWordsToCtmJob(tk.Path(str(sis_setup / "search_out.py")), corpus).out_ctm
    sclite = ScliteJob(stm, ctm, precision_ndigit=2)
    state = tk.run(sclite.out_wer)
    assert set(state.jobs.values()) == {"finished"}, state.jobs
    assert sclite.out_wer.get() == 33.33  # 1 substitution + 1 deletion of 6 words
    assert sclite.out_ref_words.get() == 6 and sclite.out_hyp_words.get() == 5


def test_sclite_counts_substitutions_deletions_insertions(sis_setup):
    """Hand-made case: ref "THE CAT SAT ON THE MAT", hyp "THE DOG SAT THE MAT NOW": CAT->DOG (1 substitution),
    ON missing (1 deletion), NOW extra (1 insertion); 3 errors of 6 words = 50 %."""
    entries = [CorpusEntry("dev/1-2-0001/1-2-0001", "/x/a.flac", 3.0, 48000, "THE CAT SAT ON THE MAT", "1", "2")]
    write_corpus_json(str(sis_setup / "corpus.json"), "dev", entries, 16000)
    (sis_setup / "search_out.py").write_text(repr({"dev/1-2-0001/1-2-0001": "THE DOG SAT THE MAT NOW"}))
    corpus = tk.Path(str(sis_setup / "corpus.json"))
    ctm = SearchWordsToCtmJob(tk.Path(str(sis_setup / "search_out.py")), corpus).out_ctm
    result = WerResult.from_sclite(ScliteJob(CorpusToStmJob(corpus).out_stm, ctm, precision_ndigit=2))
    state = tk.run(result.wer)
    assert set(state.jobs.values()) == {"finished"}, state.jobs
    assert {k: v.get() for k, v in result.variables().items()} == {"wer": 50.0, "sub": 1, "del": 1, "ins": 1,
                                                                   "words": 6}
