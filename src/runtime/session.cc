#include "runtime/session.h"

#include <fmt/format.h>

namespace kpt::runtime {

Session::Session(models::BuiltModel model, const CompileOptions& options)
    : model_(std::move(model)), device_(options.device) {
  KvLayout kv;
  kv.n_layers = model_.info.n_layers;
  kv.n_kv_heads = model_.info.n_kv_heads;
  kv.head_dim = model_.info.head_dim;
  kv.block_size = cache_.block_size();
  exec_ = compile_graph(model_.graph, kv, options);
}

void Session::validate(const ForwardInputs& in) const {
  const ModelInfo& info = model_.info;
  if (in.input_ids.empty()) throw Error(ErrorCode::kInvalidArgument, "input_ids is empty: give at least one sequence");
  const size_t seq = in.input_ids[0].size();
  for (size_t b = 0; b < in.input_ids.size(); ++b) {
    if (in.input_ids[b].empty()) {
      throw Error(ErrorCode::kInvalidArgument, fmt::format("input_ids row {} is empty: every row needs a token", b));
    }
    if (in.input_ids[b].size() != seq) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("input_ids row {} has {} tokens but row 0 has {}; pad rows to one length and mark "
                              "padding in attention_mask",
                              b, in.input_ids[b].size(), seq));
    }
    for (size_t s = 0; s < seq; ++s) {
      int64_t id = in.input_ids[b][s];
      if (id < 0 || id >= info.vocab_size) {
        throw Error(ErrorCode::kOutOfRange, fmt::format("token id {} at input_ids[{}][{}] is out of range for "
                                                        "vocab_size {}",
                                                        id, b, s, info.vocab_size));
      }
    }
  }
  auto check_rows = [&](const Rows& rows, const char* what) {
    if (rows.empty()) return;
    if (rows.size() != in.input_ids.size()) {
      throw Error(ErrorCode::kInvalidArgument, fmt::format("{} has {} rows but input_ids has {}", what, rows.size(),
                                                           in.input_ids.size()));
    }
    for (size_t b = 0; b < rows.size(); ++b) {
      if (rows[b].size() != seq) {
        throw Error(ErrorCode::kInvalidArgument, fmt::format("{} row {} has {} entries but input_ids row {} has {}",
                                                             what, b, rows[b].size(), b, seq));
      }
    }
  };
  check_rows(in.attention_mask, "attention_mask");
  check_rows(in.token_type_ids, "token_type_ids");
  for (size_t b = 0; b < in.attention_mask.size(); ++b) {
    int64_t n_valid = 0;
    for (size_t s = 0; s < seq; ++s) {
      int64_t m = in.attention_mask[b][s];
      if (m != 0 && m != 1) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("attention_mask[{}][{}] is {}; entries must be 0 (padding) or 1", b, s, m));
      }
      n_valid += m;
    }
    if (n_valid == 0) {
      throw Error(ErrorCode::kInvalidArgument, fmt::format("attention_mask row {} masks every token", b));
    }
  }
  if (!in.token_type_ids.empty()) {
    for (size_t b = 0; b < in.token_type_ids.size(); ++b) {
      for (size_t s = 0; s < seq; ++s) {
        int64_t t = in.token_type_ids[b][s];
        if (t < 0 || (info.type_vocab_size == 0 ? t != 0 : t >= info.type_vocab_size)) {
          throw Error(ErrorCode::kOutOfRange,
                      info.type_vocab_size == 0
                          ? fmt::format("token_type_ids[{}][{}] is {} but {} has no token types", b, s, t,
                                        info.model_type)
                          : fmt::format("token_type_ids[{}][{}] is {}, out of range for type_vocab_size {}", b, s, t,
                                        info.type_vocab_size));
        }
      }
    }
  }
  if (info.max_positions > 0 && static_cast<int64_t>(seq) > info.max_positions) {
    throw Error(ErrorCode::kOutOfRange, fmt::format("sequence of {} tokens exceeds the model's {} positions "
                                                    "(max_position_embeddings)",
                                                    seq, info.max_positions));
  }
}

Tensor Session::forward(const ForwardInputs& in) {
  validate(in);
  const size_t batch = in.input_ids.size(), seq = in.input_ids[0].size();
  Rows mask = in.attention_mask;
  if (mask.empty()) mask.assign(batch, std::vector<int64_t>(seq, 1));
  Rows types = in.token_type_ids;
  if (types.empty()) types.assign(batch, std::vector<int64_t>(seq, 0));
  std::vector<int64_t> ids;
  for (size_t b = 0; b < batch; ++b) ids.push_back(cache_.new_sequence());
  Tensor out;
  try {
    out = run(ids, in.input_ids, mask, types, true);
  } catch (...) {
    for (int64_t id : ids) cache_.free_sequence(id);
    throw;
  }
  for (int64_t id : ids) cache_.free_sequence(id);
  return out;
}

Tensor Session::step_last_logits(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask) {
  KPT_CHECK(model_.info.causal_lm, "step_last_logits on an encoder");
  check_ids(ids);
  Rows types(ids.size(), std::vector<int64_t>(ids[0].size(), 0));
  return run(seq_ids, ids, mask, types, false);
}

std::vector<int64_t> Session::step_argmax(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask) {
  KPT_CHECK(model_.info.causal_lm, "step_argmax on an encoder");
  check_ids(ids);
  Rows types(ids.size(), std::vector<int64_t>(ids[0].size(), 0));
  const Tensor next = run(seq_ids, ids, mask, types, false, true);
  return std::vector<int64_t>(next.data<int64_t>(), next.data<int64_t>() + next.numel());
}

void Session::check_ids(const Rows& ids) const {
  for (size_t b = 0; b < ids.size(); ++b) {
    for (int64_t id : ids[b]) {
      if (id < 0 || id >= model_.info.vocab_size) {
        throw Error(ErrorCode::kOutOfRange, fmt::format("token id {} in row {} is out of range for vocab_size {}", id,
                                                        b, model_.info.vocab_size));
      }
    }
  }
}

std::vector<int64_t> Session::step_sample(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask,
                                          const Executable::SampleParams& p) {
  KPT_CHECK(model_.info.causal_lm, "step_sample on an encoder");
  check_ids(ids);
  Rows types(ids.size(), std::vector<int64_t>(ids[0].size(), 0));
  const Tensor next = run(seq_ids, ids, mask, types, false, false, &p);
  return std::vector<int64_t>(next.data<int64_t>(), next.data<int64_t>() + next.numel());
}

Tensor Session::run(const std::vector<int64_t>& seq_ids, const Rows& ids, const Rows& mask, const Rows& types,
                    bool all_rows, bool argmax, const Executable::SampleParams* sample) {
  const int64_t batch = static_cast<int64_t>(ids.size()), seq = static_cast<int64_t>(ids[0].size());
  std::vector<int64_t> flat_ids, flat_pos, flat_types;
  for (int64_t b = 0; b < batch; ++b) {
    // Positions count real tokens only (cumsum(mask) - 1, at least 0), so padding on either side
    // leaves a row's outputs unchanged.
    int64_t valid = cache_.valid_tokens(seq_ids[static_cast<size_t>(b)]);
    for (int64_t s = 0; s < seq; ++s) {
      valid += mask[static_cast<size_t>(b)][static_cast<size_t>(s)] != 0;
      flat_ids.push_back(ids[static_cast<size_t>(b)][static_cast<size_t>(s)]);
      flat_pos.push_back(std::max<int64_t>(valid - 1, 0));
      flat_types.push_back(types[static_cast<size_t>(b)][static_cast<size_t>(s)]);
    }
  }
  if (model_.info.max_positions > 0) {
    for (size_t i = 0; i < flat_pos.size(); ++i) {
      if (flat_pos[i] >= model_.info.max_positions) {
        throw Error(ErrorCode::kOutOfRange, fmt::format("position {} exceeds the model's {} positions "
                                                        "(max_position_embeddings)",
                                                        flat_pos[i], model_.info.max_positions));
      }
    }
  }
  for (int64_t b = 0; b < batch; ++b) cache_.append(seq_ids[static_cast<size_t>(b)], mask[static_cast<size_t>(b)]);

  std::map<std::string, Tensor> inputs;
  inputs["input_ids"] = Tensor::from_i64(flat_ids, {batch, seq});
  inputs["position_ids"] = Tensor::from_i64(flat_pos, {batch, seq});
  if (model_.graph.find_input("token_type_ids") >= 0) inputs["token_type_ids"] = Tensor::from_i64(flat_types, {batch, seq});
  if (model_.graph.find_input("logit_rows") >= 0) {
    std::vector<int64_t> rows;
    for (int64_t b = 0; b < batch; ++b) {
      if (all_rows) {
        for (int64_t s = 0; s < seq; ++s) rows.push_back(s);
      } else {
        rows.push_back(seq - 1);
      }
    }
    inputs["logit_rows"] = Tensor::from_i64(rows, {batch, all_rows ? seq : 1});
  }
  try {
    const KvStep step = cache_.step(seq_ids, seq);
    if (sample != nullptr) return exec_->run_sample(inputs, step, *sample);
    return argmax ? exec_->run_argmax(inputs, step) : exec_->run(inputs, step).at(0);
  } catch (...) {
    for (int64_t id : seq_ids) cache_.rollback(id, seq);
    throw;
  }
}

}  // namespace kpt::runtime
