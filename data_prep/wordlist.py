"""Word categories for the deterministic sentence generator of the embedded corpus.

Every word must be in CMUdict (checked by ``tests/test_data_text.py``), so the embedded corpus never has
OOV words and the lexicon job can use its hard OOV error as a real safety net for external corpora.
The categories only exist to make the sentences sound like English, which gives the TTS voices a
natural prosody and the phoneme inventory a realistic distribution.
"""

DETERMINERS = ("the", "a", "this", "that", "every", "one", "some", "my", "his", "her", "our", "their")

ADJECTIVES = (
    "old", "young", "small", "large", "quiet", "happy", "bright", "dark", "cold", "warm", "green", "red",
    "blue", "white", "black", "little", "great", "strange", "gentle", "heavy", "simple", "busy", "early",
    "proud", "silent", "golden", "wooden", "tired", "clever", "brave", "careful", "empty", "open", "ancient",
)

NOUNS = (
    "man", "woman", "child", "captain", "doctor", "farmer", "teacher", "king", "queen", "soldier", "sailor",
    "horse", "dog", "bird", "river", "mountain", "village", "house", "garden", "window", "door", "road",
    "forest", "ship", "letter", "book", "table", "fire", "morning", "evening", "winter", "summer", "city",
    "island", "bridge", "church", "castle", "friend", "mother", "father", "brother", "sister", "stranger",
    "lamp", "chair", "stone", "field", "boat", "voice", "story",
)

TRANSITIVE_VERBS = (
    "saw", "found", "carried", "opened", "watched", "followed", "remembered", "painted", "visited",
    "described", "noticed", "answered", "called", "helped", "kept", "left", "loved", "met", "passed",
    "reached", "showed", "touched", "wanted", "closed", "crossed", "built", "heard", "brought", "read",
)

INTRANSITIVE_VERBS = (
    "slept", "waited", "laughed", "smiled", "listened", "arrived", "walked", "returned", "stood", "sang",
    "rested", "spoke", "wondered", "trembled", "disappeared", "remained", "hurried", "stayed",
)

ADVERBS = (
    "slowly", "quickly", "quietly", "suddenly", "always", "never", "often", "again", "together", "alone",
    "carefully", "gladly", "softly", "early", "late", "today", "yesterday",
)

PREPOSITIONS = ("near", "behind", "across", "under", "over", "beside", "inside", "along", "toward", "beyond")

CONJUNCTIONS = ("and", "but", "while", "because", "when")
