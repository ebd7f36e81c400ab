"""Dataset loaders on files written in the standard formats, and the batch sampler."""
import numpy as np
import pytest
import torch

from dni_repro.data import EpochSampler, load_dataset
from dni_repro.data.mnist_family import load_mnist_5k, read_idx
from dni_repro.errors import DataError
from tests.conftest import compose_config
from tests.fake_datasets import idx_bytes, write_cifar10_batches, write_idx_dataset


@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loader_reads_standard_files(tmp_path, name, compressed):
    arrays = write_idx_dataset(tmp_path, compressed=compressed)
    cfg = compose_config([f"dataset={name}", f"dataset.root={tmp_path}", "dataset.download=false"])
    data = load_dataset(cfg.dataset, cfg.paths.data_dir)
    assert data.train.inputs.shape == (64, 1, 28, 28) and data.test.inputs.shape == (32, 1, 28, 28)
    assert data.train.inputs.dtype == torch.float32
    assert 0.0 <= data.train.inputs.min() and data.train.inputs.max() <= 1.0
    torch.testing.assert_close(data.train.inputs[:, 0] * 255, torch.from_numpy(arrays["train_images"]).float())
    assert data.test.labels.tolist() == arrays["test_labels"].tolist()


def test_idx_loader_finds_torchvision_layout(tmp_path):
    write_idx_dataset(tmp_path / "MNIST" / "raw")
    cfg = compose_config(["dataset=mnist", f"dataset.root={tmp_path}", "dataset.download=false"])
    assert len(load_dataset(cfg.dataset, cfg.paths.data_dir).train) == 64


def test_missing_idx_files_name_what_to_get(tmp_path):
    cfg = compose_config(["dataset=mnist", f"dataset.root={tmp_path}", "dataset.download=false"])
    with pytest.raises(DataError) as error:
        load_dataset(cfg.dataset, cfg.paths.data_dir)
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "dataset.root" in message and "\n" not in message


def test_corrupt_idx_file_is_reported(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(idx_bytes(np.zeros((4, 2, 2), dtype=np.uint8))[:-3])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_cifar10_loader_reads_pickled_batches(tmp_path):
    written = write_cifar10_batches(tmp_path)
    cfg = compose_config(["dataset=cifar10", f"dataset.root={tmp_path}", "dataset.download=false"])
    data = load_dataset(cfg.dataset, cfg.paths.data_dir)
    assert data.train.inputs.shape == (100, 3, 32, 32) and data.test.inputs.shape == (20, 3, 32, 32)
    first = torch.from_numpy(written["data_batch_1"][b"data"][0].reshape(3, 32, 32)).float() / 255
    torch.testing.assert_close(data.train.inputs[0], first)
    assert data.test.labels.tolist() == written["test_batch"][b"labels"]


def test_missing_cifar10_names_the_batches(tmp_path):
    cfg = compose_config(["dataset=cifar10", f"dataset.root={tmp_path}", "dataset.download=false"])
    with pytest.raises(DataError, match="data_batch_1.*test_batch"):
        load_dataset(cfg.dataset, cfg.paths.data_dir)


def test_embedded_mnist_5k_split_is_fixed_and_balanced():
    data = load_mnist_5k()
    assert len(data.train) == 4000 and len(data.test) == 1000
    assert torch.bincount(data.train.labels).tolist() == [400] * 10
    assert torch.bincount(data.test.labels).tolist() == [100] * 10
    again = load_mnist_5k()
    assert torch.equal(data.test.inputs, again.test.inputs)
    assert data.train.inputs.max() == 1.0 and data.train.inputs.min() == 0.0


def test_sampler_covers_each_epoch_and_resumes_exactly():
    sampler = EpochSampler(num_examples=10, batch_size=3, seed=5, device=torch.device("cpu"))
    epoch = torch.cat([sampler.next_indices() for _ in range(3)])
    assert len(set(epoch.tolist())) == 9  # no repeats within an epoch
    state = sampler.state_dict()
    expected = [sampler.next_indices() for _ in range(5)]
    resumed = EpochSampler(num_examples=10, batch_size=3, seed=999, device=torch.device("cpu"))
    resumed.load_state_dict(state)
    for batch in expected:
        assert torch.equal(resumed.next_indices(), batch)
