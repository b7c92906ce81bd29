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

The names above are listed in ``__init__.pyi`` and imported on first use (PEP 562, through
``lazy_loader``), so the tokenizer alone (``fedkeys suggest``) loads no corpus readers.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
