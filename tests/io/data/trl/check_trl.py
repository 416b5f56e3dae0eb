"""Train one step of TRL's DPOTrainer and SFTTrainer on labelwright's exports (a check run by hand).

TRL pulls PyTorch and transformers, too heavy for the test extra, so the suite checks the rows with TRL's
dataset helpers only when TRL is installed (tests/io/test_hf_trl.py). This script is the full check: it
loads the files the way TRL's own example scripts do (``datasets.load_dataset("json", ...)``) and runs one
optimisation step of each trainer on the CPU with a tiny randomly initialised Llama and a word-level
tokenizer built from the files themselves (no download). Run it with a Python that has ``trl``::

    labelwright export preference --format dpo -o dpo.jsonl
    labelwright export demos --format sft -o sft.jsonl
    python tests/io/data/trl/check_trl.py dpo.jsonl sft.jsonl
"""

from __future__ import annotations

import json
import sys
import tempfile

from datasets import load_dataset
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def texts(path: str):
    for line in open(path, encoding="utf-8"):
        row = json.loads(line)
        for v in row.values():
            if isinstance(v, str):
                yield v
            else:
                yield from (m["content"] for m in v)


def tokenizer(paths: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["<unk>", "<pad>", "<s>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok.train_from_iterator((t for p in paths for t in texts(p)), trainers.WordLevelTrainer(special_tokens=special))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="<|end|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def model(tok) -> LlamaForCausalLM:
    return LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))


def main(dpo_path: str, sft_path: str) -> None:
    tok = tokenizer([dpo_path, sft_path])
    common = {"max_steps": 1, "per_device_train_batch_size": 2, "report_to": [], "use_cpu": True, "save_strategy": "no",
              "logging_steps": 1}
    with tempfile.TemporaryDirectory() as out:
        dpo = load_dataset("json", data_files=dpo_path, split="train")
        trainer = DPOTrainer(model=model(tok), ref_model=model(tok), args=DPOConfig(output_dir=out, **common),
                             train_dataset=dpo,
                             processing_class=tok)
        result = trainer.train()
        print(f"DPOTrainer: {dpo.num_rows} rows {dpo.column_names}, one step, loss {result.training_loss:.4f}")
        sft = load_dataset("json", data_files=sft_path, split="train")
        trainer = SFTTrainer(model=model(tok), args=SFTConfig(output_dir=out, **common), train_dataset=sft,
                             processing_class=tok)
        result = trainer.train()
        print(f"SFTTrainer: {sft.num_rows} rows {sft.column_names}, one step, loss {result.training_loss:.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
