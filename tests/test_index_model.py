"""The trained retrieval model: its manifest, the adapter merge, the decision rule, and retraining."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.model import MODEL_DIR, ModelError, RetrievalModel, load_model
from index.train import TrainSettings, choose_cutoffs, data_hash, folds_of, message_files, reply_cost
from knowledge.files import sha256


def test_shipped_model_matches_its_manifest_and_the_shipped_data():
    """The model in the package was trained from exactly the message files shipped beside it."""
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    assert manifest["data_hash"] == data_hash(message_files(), TrainSettings()), (
        "index/data/messages or the training settings changed: run `tutor index train`"
    )
    assert manifest["data_files"] == [p.name for p in message_files()]
    for name, digest in manifest["files"].items():
        assert sha256(MODEL_DIR / name) == digest
    assert (MODEL_DIR / "adapter.safetensors").stat().st_size <= 10 * 1024 * 1024
    model = load_model()
    assert 0.0 <= model.unsure_min <= model.answer_min <= 1.0


def test_a_damaged_model_is_refused_with_the_command_that_rebuilds_it(tmp_path):
    for name in ("manifest.json", "model.json", "adapter.safetensors"):
        (tmp_path / name).write_bytes((MODEL_DIR / name).read_bytes())
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(ModelError, match="tutor index train"):
        load_model(tmp_path)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(ModelError, match="tutor index train"):
        load_model(tmp_path)


def test_cutoffs_minimise_the_stated_cost():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=400)
    right = rng.uniform(size=400) < p  # calibrated: right with probability p
    in_kb = right | (rng.uniform(size=400) < 0.5)
    settings = TrainSettings()
    a, u = choose_cutoffs(p, right, in_kb, settings)
    best = reply_cost(p, right, in_kb, a, u, settings)
    for other_a, other_u in [(0.5, 0.5), (0.9, 0.2), (a, 0.0), (1.0, 1.0)]:
        assert best <= reply_cost(p, right, in_kb, other_a, other_u, settings)
    # A confident wrong answer costs four refusals: answering needs better than 4:1 odds.
    assert a >= 0.7


def test_folds_split_authors_not_messages():
    folds = folds_of(["w1", "w2", "w3", "w4", "w1"], 2)
    assert folds == [{"w1", "w3"}, {"w2", "w4"}]


def test_plain_model_is_a_valid_baseline():
    model = RetrievalModel.plain()
    assert model.ranker(np.array([[0.6, 0.4, 1.0]]))[0] == pytest.approx(0.5)
    features = np.zeros(8)
    features[0] = 0.6
    assert model.probability(features) > 0.5 > model.probability(np.zeros(8))


@pytest.mark.model
def test_adapter_merge_equals_the_peft_model():
    """The ONNX encoder with the exported factors merged gives the peft model's embeddings (to 1e-5)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    from index.encoder import MiniLMEncoder, default_model_dir
    from knowledge.finetune import LORA_TARGETS, lora_factors

    path = default_model_dir()
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModel.from_pretrained(str(path)), LoraConfig(r=4, lora_alpha=8, target_modules=LORA_TARGETS)
    )
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)  # B starts at zero; make the adapter do something
    model.eval()
    texts = ["what is stride", "hey quick q whats the lr finder for lol"]
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    with __import__("tempfile").TemporaryDirectory() as tmp:
        adapter = f"{tmp}/adapter.safetensors"
        save_file(lora_factors(model), adapter)
        encoder = MiniLMEncoder(adapter=adapter)
        np.testing.assert_allclose(encoder.encode(texts), expected, atol=1e-5)
        plain = MiniLMEncoder().encode(texts)
        assert np.abs(plain - expected).max() > 1e-3  # the adapter really changed the vectors
        assert encoder.model_id != MiniLMEncoder.model_id


@pytest.mark.slow
@pytest.mark.model
def test_tutor_index_train_on_a_small_subset(tmp_path):
    """The training command end to end on a tenth of the data, one epoch: a loadable, working model."""
    from click.testing import CliRunner

    from tutor.cli import main

    out = tmp_path / "model"
    result = CliRunner().invoke(main, ["index", "train", "--limit", "40", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cut-offs on out-of-fold probabilities" in result.output
    model = load_model(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["epochs"] == 1 and len(manifest["data_files"]) == len(message_files())
    assert manifest["report"]["authors"] == sorted(p.stem for p in message_files())
    assert model.ranker.weights[0] > 0 or model.ranker.weights[1] > 0  # closer entries rank higher


@pytest.mark.model
def test_helpful_votes_become_training_messages(seeded_store):
    """`tutor index train --with-feedback`: a Helpful vote on a bundled entry is a labelled message."""
    from index.train import feedback_queries, label

    item = next(it for it in seeded_store.items() if it.question == "What is “stride”?")
    seeded_store.add_feedback(user_id="1", query="how far does the filter hop", helpful=True, item_id=item.id)
    seeded_store.add_feedback(user_id="2", query="stride??", helpful=False, item_id=item.id)
    seeded_store.add_feedback(user_id="3", query="no item", helpful=True, item_id=None)
    queries = feedback_queries(seeded_store)
    assert [q.query for q in queries] == ["how far does the filter hop"]
    assert label(queries, seeded_store.items())[0].targets == {item.id}
