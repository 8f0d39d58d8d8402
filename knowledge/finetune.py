"""LoRA fine-tuning of all-MiniLM-L6-v2 (torch and peft, imported lazily).

Here rather than in ``index`` so that a trained quiz grader (``knowledge.quiz``, below ``index``) can use
the same pieces; today ``tutor index train`` does. Only the factors ship, in the layout the ONNX encoder
merges at load time (``index.encoder.merge_adapter``): ``<weight>.lora_A`` (r x in) and ``<weight>.lora_B``
(out x r, scaling folded in), so that the merged weight is ``W + B @ A``.
"""

from __future__ import annotations

from pathlib import Path

LORA_TARGETS = (
    r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)"
)


def lora_model(model_dir: Path, rank: int, alpha: int, dropout: float, seed: int):
    """(tokenizer, the base model wrapped with fresh LoRA factors on every attention and MLP matrix)."""
    import warnings

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")  # peft's own calls
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS, bias="none"
    )
    return tokenizer, get_peft_model(AutoModel.from_pretrained(str(model_dir)), config)


def mean_pooled(model, batch):
    """L2-normalised mean of the last hidden states over the attention mask (sentence-transformers' pooling)."""
    import torch

    hidden = model(**batch).last_hidden_state
    weights = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)


def lora_factors(model) -> dict:
    """A peft model's LoRA factors named after the base weights they adapt, scaling folded into B."""
    factors = {}
    for name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is None or "default" not in lora_a:
            continue
        key = name.removeprefix("base_model.model.") + ".weight"
        factors[f"{key}.lora_A"] = lora_a["default"].weight.detach().contiguous()
        factors[f"{key}.lora_B"] = (
            module.lora_B["default"].weight.detach() * module.scaling["default"]
        ).contiguous()
    return factors


def save_factors(model, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(lora_factors(model), str(path))
    path.chmod(0o644)  # safetensors writes 0600; the model ships in the package
