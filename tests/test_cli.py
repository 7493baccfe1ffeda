"""The ``pecft`` command: addressing, listing, validation errors (one message naming the choices or the fix),
output folders, resume. Dry runs of every paper preset and the multi-process launches: ``test_dry_run.py``."""

from __future__ import annotations

import json
from urllib.error import URLError

import pytest
import yaml
from torchvision.datasets import CIFAR100

from pecft_lib import cli
from pecft_lib.benchmarks import vision
from pecft_lib.benchmarks.split_cifar100 import ARCHIVE_SHA256 as CIFAR_SHA256
from pecft_lib.benchmarks.split_imagenet_r import ARCHIVE_SHA256 as IMR_SHA256
from pecft_lib.benchmarks.split_imagenet_r import URL as IMR_URL
from pecft_lib.config import CONFIG_DIR
from pecft_lib.experiments import parse_address, resolve

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``pecft ARGV`` in this process: exit status, stdout, stderr."""
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_error(capsys, argv: list[str], *fragments: str) -> str:
    status, _, err = run_cli(capsys, *argv)
    assert status == 2, err
    assert err.startswith("pecft: error: ") and err.count("\n") == 1, err  # one message, one line
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path, torch_state):
    """Runs write under tmp_path; downloads go to an empty cache; no hub access."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PECFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PECFT_PROFILE", raising=False)


# ----------------------------------------------------------------------------------------------- addressing


@pytest.mark.parametrize("address, parts", [
    ("l2p", ("l2p", None, None)),
    ("l2p:cifar100", ("l2p", "cifar100", None)),
    ("inflora:vision/SeqLoRA", ("inflora", "vision", "SeqLoRA")),
    ("classic_cl/replay", ("classic_cl", None, "replay")),
    ("runs/my.yaml", ("runs/my.yaml", None, None)),
    ("runs/my.yaml:vision/SeqFT", ("runs/my.yaml", "vision", "SeqFT")),
])
def test_addresses(address, parts):
    assert parse_address(address) == parts


def test_resolve_defaults_overrides_and_round_trip():
    experiment = resolve("l2p:cifar100", "paper", {"optim.lr": 0.01})
    assert (experiment.run, experiment.seed, experiment.config.optim.lr) == ("L2P", 42, 0.01)  # the reference seed
    assert experiment.config.backbone == "vit_base_patch16_224.orig_in21k"
    assert type(experiment).from_dict(experiment.to_dict()) == experiment
    assert resolve("olora:generative/IncLoRA", "paper").seed == 42
    assert resolve("peft_primer:text/lora", "quick").name == "LoRA (q, v)"
    baseline = resolve("inflora:vision/SeqLoRA", "quick", {"baselines.SeqLoRA.lr": 0.1})
    assert baseline.config.baselines["SeqLoRA"].lr == 0.1 and baseline.name == "SeqLoRA"


def test_set_values_are_yaml():
    assert cli.parse_overrides(["method.layers=[0, 1]", "optim.grad_clip_norm=null", "optim.lr=1e-3",
                                "benchmark.name=split_cifar100"]) == {
        "method.layers": [0, 1], "optim.grad_clip_norm": None, "optim.lr": 1e-3, "benchmark.name": "split_cifar100"}


def test_list_shows_every_method_experiment_benchmark_and_checkpoint(capsys):
    status, out, _ = run_cli(capsys, "list")
    assert status == 0
    for line in ("l2p:vision  runs: L2P, NoPrompt, SeqFT, Joint", "l2p:cifar100  runs: L2P",
                 "dualprompt:imagenet_r", "coda_prompt:imagenet_r", "inflora:cifar100", "olora:generative",
                 "olora:text  runs: O-LoRA, IncLoRA, SeqLoRA, SeqFT, Joint", "classic_cl:default  runs: naive",
                 "peft_primer:vision  runs: linear_probe", "split_imagenet_r", "olora_text",
                 "vit_base_patch16_224.augreg_in21k_ft_in1k", "all-MiniLM-L6-v2", "pecft-vit-glyphs", "pecft-hybrid-glyphs",
                 "comparison grid (medium profile, `pecft comparison --profile medium`):",
                 "five_domains (five_domains, pecft-hybrid-glyphs)  runs: L2P, DualPrompt, CODA-Prompt",
                 "text_domains (text_domains, all-MiniLM-L6-v2)  runs: L2P, DualPrompt, CODA-Prompt"):
        assert line in out, line


# ------------------------------------------------------------------------------------------ validation errors


def test_unknown_method_lists_the_methods(capsys):
    assert_error(capsys, ["run", "l2q"], "unknown method 'l2q'; valid choices: classic_cl, coda_prompt, dualprompt, "
                                         "inflora, l2p, olora, peft_primer")


def test_unknown_experiment_lists_the_profiles_experiments(capsys):
    assert_error(capsys, ["run", "inflora:cifar10", "--profile", "paper"],
                 "unknown experiment 'cifar10'; valid choices: cifar100, imagenet_r")


def test_ambiguous_experiment_asks_for_one(capsys):
    assert_error(capsys, ["run", "dualprompt"],
                 "dualprompt [quick] has several experiments; choose one of: vision, text")


def test_unknown_run_lists_method_and_baselines(capsys):
    assert_error(capsys, ["run", "l2p:vision/SeqLoRA"],
                 "unknown run 'SeqLoRA'; valid choices: Joint, L2P, NoPrompt, SeqFT")


def test_unknown_profile_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "l2p", "--profile", "full"])
    assert exit_info.value.code == 2
    assert "argument --profile: invalid choice: 'full'" in capsys.readouterr().err


def test_unknown_key_lists_the_valid_keys(capsys):
    assert_error(capsys, ["run", "l2p:vision", "--set", "optim.learning_rate=0.1"],
                 "l2p.yaml[quick].experiments.vision.optim: unknown key(s) learning_rate; valid keys: lr, "
                 "lr_reference_batch, batch_size")


def test_unknown_top_level_key(capsys):
    assert_error(capsys, ["run", "inflora:cifar100", "--profile", "paper", "--set", "optimizer=sgd"],
                 "unknown key(s) optimizer; valid keys: backbone, benchmark, method, optim, baselines")


def test_wrong_type_names_key_expected_and_given(capsys):
    assert_error(capsys, ["run", "l2p:vision", "--set", "optim.epochs=two"],
                 "experiments.vision.optim.epochs: expected int, got str 'two'")
    assert_error(capsys, ["run", "l2p:vision", "--set", "optim.epochs.first=1"], "optim.epochs is a int, not a mapping")


def test_malformed_set(capsys):
    assert_error(capsys, ["run", "l2p:vision", "--set", "optim.lr"], "--set expects KEY=VALUE (e.g. optim.lr=0.01)")


def test_unknown_benchmark_lists_the_benchmarks(capsys):
    assert_error(capsys, ["run", "l2p:vision", "--set", "benchmark.name=split_cifar10"],
                 "unknown benchmark 'split_cifar10'; valid choices: debian_sections, five_domains, olora_text, "
                 "split_cifar100, split_fashion_mnist, split_imagenet_r, split_mnist, text_domains, "
                 "wordnet_supersenses")


def test_unknown_checkpoint_tag_lists_the_tags(capsys):
    assert_error(capsys, ["run", "l2p:cifar100", "--profile", "paper", "--set", "backbone=vit_base_patch16_224"],
                 "unknown backbone 'vit_base_patch16_224'; valid choices: all-MiniLM-L6-v2, pecft-hybrid-glyphs, "
                 "pecft-vit-glyphs, pecft-vit-tiny, vit_base_patch16_224.augreg_in21k, "
                 "vit_base_patch16_224.augreg_in21k_ft_in1k, vit_base_patch16_224.orig_in21k", "Give the pretrained tag explicitly")
    assert_error(capsys, ["run", "olora:generative", "--profile", "paper", "--set", "model=t5-3b"],
                 "unknown T5 model 't5-3b'; valid choices: t5-large")


def test_yaml_file_in_the_configs_format(capsys, tmp_path):
    mine = tmp_path / "my_prompts.yaml"
    mine.write_text((CONFIG_DIR / "l2p.yaml").read_text().replace("pool_size: 10", "pool_sise: 10", 1))
    assert_error(capsys, ["run", str(mine)], "unknown method 'my_prompts'")
    assert_error(capsys, ["run", f"{mine}:vision", "--method", "l2p"],
                 "my_prompts.yaml[quick].experiments.vision.method: unknown key(s) pool_sise")
    absent = tmp_path / "absent.yaml"
    assert_error(capsys, ["run", str(absent)], f"config file {absent} does not exist")


def test_dry_run_experiences_needs_dry_run(capsys):
    assert_error(capsys, ["run", "l2p:vision", "--dry-run-experiences", "1"], "--dry-run-experiences needs --dry-run")


# ----------------------------------------------------------------------------------------- data and weights


def _offline(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(vision, "download_url", refuse)


def test_missing_cifar100_gives_the_download_instructions(capsys, monkeypatch, tmp_path):
    _offline(monkeypatch)
    archive = tmp_path / "cache" / "cifar-100-python.tar.gz"
    assert_error(capsys, ["run", "l2p:cifar100", "--profile", "paper", "--out", "run"],
                 f"cifar-100-python.tar.gz is not in {archive.parent} and the download failed (URLError",
                 "Fix: let torchvision download it", CIFAR100.url,
                 f"sha256 {CIFAR_SHA256}", f"put it at {archive}")
    assert not (tmp_path / "run" / cli.EXPERIMENT_FILE).exists()  # a failed build leaves no run behind


def test_missing_imagenet_r_gives_the_download_instructions(capsys, monkeypatch, tmp_path):
    _offline(monkeypatch)
    assert_error(capsys, ["run", "dualprompt:imagenet_r", "--profile", "paper"],
                 IMR_URL, f"sha256 {IMR_SHA256}", f"tar -xf imagenet-r.tar -C {tmp_path / 'cache'}")


def test_wrong_sha256_of_a_downloaded_file_is_refused(capsys, tmp_path):
    archive = tmp_path / "cache" / "cifar-100-python.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"not the CIFAR-100 archive")
    assert_error(capsys, ["run", "inflora:cifar100", "--profile", "paper"],
                 f"checksum mismatch for {archive}: expected sha256 {CIFAR_SHA256}, got ", f"Fix: delete {archive}")


def test_missing_paper_weights_are_not_replaced_by_others(capsys, monkeypatch):
    from pecft_lib.backbones import checkpoints

    def offline_hub(*args, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("offline")
        return real_create(*args, pretrained=False, **kwargs)

    real_create = checkpoints.timm.create_model
    monkeypatch.setattr(checkpoints.timm, "create_model", offline_hub)
    # the benchmark is built first: give it synthetic data, so that the weights are what is missing
    from pecft_lib import experiments
    from pecft_lib.dry_run import synthetic_benchmark

    monkeypatch.setattr(experiments.BenchmarkConfig, "build", lambda self: synthetic_benchmark(self))
    assert_error(capsys, ["run", "coda_prompt:cifar100", "--profile", "paper"],
                 "could not download the weights of vit_base_patch16_224.augreg_in21k_ft_in1k (OSError: offline)",
                 "timm/vit_base_patch16_224.augreg_in21k_ft_in1k", "checkpoint_path=")


# --------------------------------------------------------------------------------------- output and resume


def test_finished_run_is_kept_unless_forced(capsys, tmp_path):
    argv = ["run", "classic_cl", "--dry-run", "--out", "out"]
    status, out, err = run_cli(capsys, *argv)
    assert status == 0, err
    assert "classic_cl:default/naive [quick, dry run]: A_last" in out
    record = json.loads((tmp_path / "out" / "record.json").read_text())
    assert record["status"] == "finished" and len(record["accuracy_matrix"]) == 5
    assert (tmp_path / "out" / "finished").exists() and (tmp_path / "out" / "checkpoint.pt").exists()
    saved = yaml.safe_load((tmp_path / "out" / cli.EXPERIMENT_FILE).read_text())
    assert saved["experiment"]["config"]["train"]["batch_size"] == 64  # the config as resolved, before the dry run
    assert_error(capsys, argv, "out already holds a finished run; choose another --out, or pass --force")
    status, _, err = run_cli(capsys, *argv, "--force")
    assert status == 0, err
    status, out, _ = run_cli(capsys, "resume", "out")
    assert status == 0 and "is finished; nothing to resume" in out


def test_unfinished_run_points_to_resume(capsys, tmp_path):
    status, _, err = run_cli(capsys, "run", "classic_cl/replay", "--dry-run", "--out", "out")
    assert status == 0, err  # replay keeps a buffer: no checkpoints, but a record after every experience
    assert not (tmp_path / "out" / "checkpoint.pt").exists()
    record = tmp_path / "out" / "record.json"
    record.write_text(record.read_text().replace('"status": "finished"', '"status": "running"'))
    assert_error(capsys, ["run", "classic_cl/replay", "--dry-run", "--out", "out"],
                 "out holds an unfinished run; continue it with `pecft resume out`, or pass --force")
    assert_error(capsys, ["resume", "out"], "keeps state that checkpoints do not hold")
    assert_error(capsys, ["resume", "elsewhere"], "elsewhere holds no run to resume")


def test_resume_continues_from_the_last_checkpoint(capsys, tmp_path):
    status, _, err = run_cli(capsys, "run", "classic_cl", "--dry-run", "--out", "full")
    assert status == 0, err
    full = json.loads((tmp_path / "full" / "record.json").read_text())
    status, _, err = run_cli(capsys, "run", "classic_cl", "--dry-run", "--out", "cut")
    assert status == 0, err
    # pretend the run was killed after the last checkpoint but before its end
    (tmp_path / "cut" / "finished").unlink()
    (tmp_path / "cut" / "record.json").unlink()
    status, out, err = run_cli(capsys, "resume", "cut")
    assert status == 0, err
    resumed = json.loads((tmp_path / "cut" / "record.json").read_text())
    assert resumed["accuracy_matrix"] == full["accuracy_matrix"]


def test_runs_as_under_accelerate_launch_cpu(capsys, monkeypatch, tmp_path):
    """In process, what ``accelerate launch --num_processes 1 --cpu`` sets up (``test_dry_run.py`` launches it)."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    status, out, err = run_cli(capsys, "run", "inflora:vision/SeqLoRA", "--dry-run", "--out", "launched")
    assert status == 0, err
    assert "inflora:vision/SeqLoRA [quick, dry run]" in out
    record = json.loads((tmp_path / "launched" / "record.json").read_text())
    assert record["config"]["device"] == "cpu" and record["initial_accuracy"] is not None  # evaluated untrained


def test_a_refused_checkpoint_request_leaves_nothing_behind(capsys, tmp_path):
    """Refused before any file is written, so the same command works once the option is dropped."""
    assert_error(capsys, ["run", "classic_cl/replay", "--dry-run", "--checkpoint-every", "5", "--out", "out"],
                 "has no checkpoints; run it without --checkpoint-every")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    status, _, err = run_cli(capsys, "run", "classic_cl/replay", "--dry-run", "--out", "out")
    assert status == 0, err


def test_the_generative_loop_refuses_checkpoints(capsys, tmp_path):
    assert_error(capsys, ["run", "olora:generative", "--profile", "paper", "--dry-run", "--checkpoint-every", "5",
                          "--out", "out"], "keeps no checkpoints, so it cannot be resumed; run it without "
                                           "--checkpoint-every")
    assert not (tmp_path / "out" / cli.EXPERIMENT_FILE).exists()


def test_an_unrelated_non_empty_folder_is_refused_unless_forced(capsys, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert_error(capsys, ["run", "classic_cl", "--dry-run", "--out", "mine"],
                 "mine is not empty and holds no run; choose a new or empty --out, or pass --force")
    status, _, err = run_cli(capsys, "run", "classic_cl", "--dry-run", "--out", "mine", "--force")
    assert status == 0, err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me" and (tmp_path / "mine" / "finished").exists()
