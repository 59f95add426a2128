"""Bad input at the command line: one clear line and exit status 2."""

from __future__ import annotations

import pytest

from effscale.search.objective import TRIAL_FAILURES, Evaluation
from effscale.search.proxy import proxy_spec
from effscale.search.train_config import TrainConfig
from tests.conftest import assert_one_line_error


def test_unknown_model_lists_known_ones(cli) -> None:
    assert_one_line_error(*cli("count", "efficientnet-b9")[::2], "unknown model", "efficientnet-b0", "resnet-50")


@pytest.mark.parametrize("width", ["-1", "0"])
def test_non_positive_width(cli, width: str) -> None:
    assert_one_line_error(*cli("count", "efficientnet-b0", "--width", width)[::2], "--width must be a finite number > 0")


def test_malformed_block_string_in_spec_file(cli, tmp_path) -> None:
    path = tmp_path / "net.json"
    path.write_text('{"name": "net", "stages": ["mb_r1_k4_o16"]}')
    assert_one_line_error(*cli("count", str(path))[::2], "kernel must be odd")


def test_alpha_below_one(cli) -> None:
    status, _, err = cli("scale", "efficientnet-b0", "--alpha", "0.9", "--beta", "1.1", "--gamma", "1.1", "--phi", "1")
    assert_one_line_error(status, err, "alpha must be a finite number >= 1")


def test_usage_error_is_one_line(cli) -> None:
    assert_one_line_error(*cli("count", "efficientnet-b0", "--width", "wide")[::2], "invalid float value")


def test_missing_spec_file(cli, tmp_path) -> None:
    assert_one_line_error(*cli("count", str(tmp_path / "nope.json"))[::2], "does not exist")


def test_count_spec_file_with_overrides(cli, tmp_path) -> None:
    from effscale.models.zoo import get_model

    get_model("mnasnet-a1").save(tmp_path / "a1.json")
    status, out, _ = cli("count", str(tmp_path / "a1.json"), "--num-classes", "10", "--in-channels", "1",
                         "--resolution", "32", "--json")
    assert status == 0 and '"resolution": 32' in out


def test_depth_beyond_what_can_be_counted(cli) -> None:
    status, _, err = cli("scale", "efficientnet-b0", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "100")
    assert_one_line_error(status, err, "1,325,087,597 blocks is more than the 100,000")


def test_zero_threads(cli) -> None:
    assert_one_line_error(*cli("train", "--threads", "0")[::2], "--threads must be from 1 to 1024, got 0")


def test_batch_larger_than_training_images(cli) -> None:
    status, _, err = cli("train", "--dataset", "synthetic:300", "--val-size", "100", "--batch-size", "256")
    assert_one_line_error(status, err, "batch size 256 is larger than the 200 training images")


@pytest.mark.parametrize("text, fragment", [
    ('{"name": "n", "stages": [{"block": "mb"}]}', "missing field(s) repeats, kernel, stride, out_channels"),
    ('{"name": "n", "stages": ["mb_r1_k3_s1_o16"], "resolution": "224"}', "'resolution' must be int, got '224'"),
    ('{"name": "n", "stages": [{"block": "mb", "repeats": 1, "kernel": 3, "stride": 1, "out_channels": 8, "skip": 1}]}',
     "'skip' must be bool, got 1"),
    ('{"name": "n", "stages": "mb_r1_k3_s1_o16"}', "'stages' must be a list"),
    ('{"name": "n", "stages": [5]}', "a stage must be a block string or an object, got 5"),
    ('{"spec": 5}', "a spec must be a JSON object, got 5"),
    ('{"name": "n", "stages": ["mb_r1_k3_s1_o16"], "stem_kernel": 2}', "stem kernel odd"),
])
def test_malformed_spec_json_is_one_line(cli, tmp_path, text: str, fragment: str) -> None:
    path = tmp_path / "net.json"
    path.write_text(text)
    assert_one_line_error(*cli("count", str(path))[::2], fragment)


@pytest.mark.parametrize("phi, fragment", [("1,,2", "an empty element in the list '1,,2'"), ("nan", "finite numbers"),
                                            ("inf", "finite numbers"), ("", "the list is empty")])
def test_bad_phi_lists(cli, phi: str, fragment: str) -> None:
    assert_one_line_error(*cli("scale", "efficientnet-b0", "--official", "--phi", phi)[::2], fragment)


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--dataset", "synthetic:"], "synthetic:: the size is missing"),
    (["train", "--dataset", "synthetic:1000000"], "the size must be an integer from 1 to 100,000"),
    (["train", "--dataset", ""], "the dataset name is empty"),
    (["train", "--seed", "99999999999999999999"], "seed must be from 0 to 2^63 - 1"),
    (["train", "--threads", "100000"], "threads must be from 1 to 1024, got 100000"),
    (["grid", "--out", "", "--dataset", "synthetic"], "an empty path"),
    (["grid", "--out", "x", "--step", "nan", "--dataset", "synthetic"], "must be finite numbers"),
    (["grid", "--out", "x", "--alpha-range", "1,inf", "--dataset", "synthetic"], "expected LOW,HIGH (finite numbers)"),
    (["grid", "--out", "x", "--resolution", "0", "--dataset", "synthetic"], "resolution must be >= 8 pixels, got 0"),
    (["scale", "efficientnet-b0", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "1e308"],
     "phi 1e+308 is too large"),
    (["scale", "efficientnet-b0", "--official", "--beta", "1.1", "--phi", "1"], "--beta and --gamma go with --alpha"),
    (["scale", "proxy", "--from", "", "--phi", "1"], "an empty path"),
    (["report", ""], "an empty path"),
    (["family", "train", ""], "an empty path"),
])
def test_more_bad_input_is_one_line(cli, argv: list[str], fragment: str) -> None:
    assert_one_line_error(*cli(*argv)[::2], fragment)


def test_data_too_large_for_memory_is_one_line_and_fails_only_the_trial(cli) -> None:
    status, _, err = cli("train", "--dataset", "synthetic:300", "--val-size", "100", "--resolution", "100000")
    assert_one_line_error(status, err, "out of memory resizing synthetic:300[train] to 100000 px")
    evaluation = Evaluation("synthetic:300", TrainConfig(val_size=100, threads=1))
    with pytest.raises(TRIAL_FAILURES, match="out of memory"):
        evaluation.evaluate(proxy_spec(100_000))


def test_a_directory_without_best_json_is_not_a_model(cli, tmp_path) -> None:
    assert_one_line_error(*cli("count", str(tmp_path))[::2], "is a directory without a best.json")
