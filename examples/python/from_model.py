"""Optimize a transformers model you already have in memory (e.g. after fine-tuning).

    python examples/python/from_model.py"""
import torch
import transformers

from kernel_pytorch.integrations import HuggingFaceOptimizer

config = transformers.LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2)
hf_model = transformers.LlamaForCausalLM(config).eval()  # stands in for your own model

optimizer = HuggingFaceOptimizer.from_model(hf_model, optimization_level="production")
model = optimizer.optimize(measure=True)  # also times transformers and compares outputs
print(optimizer.report)

ids = torch.randint(0, config.vocab_size, (1, 12))
with torch.no_grad():
    print("equal greedy tokens:",
          model.generate(ids, max_new_tokens=10, pad_token_id=0).tolist()
          == hf_model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                               pad_token_id=0).tolist())
