"""Optimize a transformers model you already have in memory (e.g. after fine-tuning).

    python examples/python/from_model.py"""
import torch
import transformers

from kernel_pytorch.integrations import HuggingFaceOptimizer

torch.manual_seed(0)
config = transformers.LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2)
hf_model = transformers.LlamaForCausalLM(config).eval()  # stands in for your own model

# production: the engine measures its levels on this model and keeps the fastest within its
# accuracy budget (it may pick int8 weights); measure=True also compares with transformers here.
optimizer = HuggingFaceOptimizer.from_model(hf_model, optimization_level="production")
optimizer.optimize(measure=True)
print(optimizer.report)

# conservative: exact fusions only, so greedy tokens equal transformers'.
model = HuggingFaceOptimizer.from_model(hf_model, optimization_level="conservative").optimize()
ids = torch.randint(0, config.vocab_size, (1, 12))
with torch.no_grad():
    want = hf_model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                             pad_token_id=0)
print("conservative: same greedy tokens as transformers:",
      model.generate(ids, max_new_tokens=10, pad_token_id=0).tolist() == want.tolist())
