#include "runtime/generator.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "runtime/sampler.h"

namespace kpt::runtime {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GenerateResult generate(Session& session, const std::vector<std::vector<int64_t>>& prompts,
                        const GenerateOptions& options, const std::vector<int64_t>& default_eos) {
  const ModelInfo& info = session.info();
  if (!info.causal_lm) {
    throw Error(ErrorCode::kUnsupported, fmt::format("generate needs a causal LM; {} ({}) is an encoder",
                                                     info.architecture, info.model_type));
  }
  validate_sampling(options);
  if (prompts.empty()) throw Error(ErrorCode::kInvalidArgument, "generate: no prompts given");
  size_t max_len = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty()) throw Error(ErrorCode::kInvalidArgument, fmt::format("prompt {} is empty", b));
    max_len = std::max(max_len, prompts[b].size());
  }
  if (info.max_positions > 0 && static_cast<int64_t>(max_len) + options.max_new_tokens > info.max_positions) {
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("prompt of {} tokens + max_new_tokens {} exceeds the model's {} positions", max_len,
                            options.max_new_tokens, info.max_positions));
  }
  const std::vector<int64_t> eos = options.eos_token_ids.value_or(default_eos);
  const int64_t pad = info.pad_token_id.value_or(0) >= 0 && info.pad_token_id.value_or(0) < info.vocab_size
                          ? info.pad_token_id.value_or(0)
                          : 0;

  // Left-pad to one length so every row's last token is real.
  const size_t batch = prompts.size();
  Rows ids(batch), mask(batch);
  std::vector<std::vector<int64_t>> history(batch);
  for (size_t b = 0; b < batch; ++b) {
    size_t n_pad = max_len - prompts[b].size();
    ids[b].assign(n_pad, pad);
    mask[b].assign(n_pad, 0);
    ids[b].insert(ids[b].end(), prompts[b].begin(), prompts[b].end());
    mask[b].insert(mask[b].end(), prompts[b].size(), 1);
    history[b] = prompts[b];
  }
  ForwardInputs check{ids, mask, {}};
  session.validate(check);

  GenerateResult result;
  result.new_ids.resize(batch);
  result.finish_reasons.assign(batch, "length");
  if (options.max_new_tokens == 0) return result;

  std::vector<int64_t> seqs;
  for (size_t b = 0; b < batch; ++b) seqs.push_back(session.cache().new_sequence());
  Sampler sampler(options.seed);
  std::vector<bool> done(batch, false);
  // Plain greedy decoding needs only each row's argmax: the backend takes it where the logits
  // are (on a GPU, one id per row crosses to the host instead of the whole vocabulary).
  const bool greedy = !options.do_sample && options.repetition_penalty == 1.0;
  const int64_t vocab = info.vocab_size;
  // Sampling without a repetition penalty needs only each row's uniform draw: the backend samples
  // where the logits are (the draws come from the same seeded stream, in the same order, as the
  // host path's; runtime::choose_sampled is the arithmetic on both sides).
  const bool sampled = options.do_sample && options.repetition_penalty == 1.0;
  auto next_tokens = [&](const Rows& step_ids, const Rows& step_mask) {
    if (greedy) return session.step_argmax(seqs, step_ids, step_mask);
    if (sampled) {
      Executable::SampleParams p;
      p.temperature = options.temperature;
      p.top_k = options.top_k;
      p.top_p = options.top_p;
      p.r.assign(batch, 0.0);
      for (size_t b = 0; b < batch; ++b) {
        if (!done[b]) p.r[b] = sampler.uniform();
      }
      std::vector<int64_t> toks = session.step_sample(seqs, step_ids, step_mask, p);
      for (size_t b = 0; b < batch; ++b) {
        if (done[b]) toks[b] = pad;
      }
      return toks;
    }
    Tensor logits = session.step_last_logits(seqs, step_ids, step_mask);  // [B, 1, V]
    std::vector<int64_t> toks(batch, pad);
    for (size_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      std::span<float> row(logits.data<float>() + static_cast<int64_t>(b) * vocab, static_cast<size_t>(vocab));
      toks[b] = sampler.next(row, history[b], options);
    }
    return toks;
  };
  try {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<int64_t> toks = next_tokens(ids, mask);
    result.prefill_ms = ms_since(t0);
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < options.max_new_tokens; ++step) {
      Rows next(batch, std::vector<int64_t>(1, pad)), next_mask(batch, std::vector<int64_t>(1, 1));
      for (size_t b = 0; b < batch; ++b) {
        if (done[b]) continue;
        const int64_t tok = toks[b];
        result.new_ids[b].push_back(tok);
        history[b].push_back(tok);
        next[b][0] = tok;
        const bool keep_going = options.on_token ? options.on_token(b, tok) : true;
        if (std::find(eos.begin(), eos.end(), tok) != eos.end()) {
          done[b] = true;
          result.finish_reasons[b] = "eos";
        } else if (!keep_going) {
          done[b] = true;
          result.finish_reasons[b] = "stopped";
        }
      }
      if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
      if (step + 1 == options.max_new_tokens) break;
      toks = next_tokens(next, next_mask);
      ++result.decode_steps;
    }
    result.decode_ms = ms_since(t1);
  } catch (...) {
    for (int64_t s : seqs) session.cache().free_sequence(s);
    throw;
  }
  for (int64_t s : seqs) session.cache().free_sequence(s);
  return result;
}

}  // namespace kpt::runtime
