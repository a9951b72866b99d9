// kpt::Tokenizer: loads tokenizer.json and runs the pipeline as HF TokenizerImpl does
// (added tokens -> normalizer -> pre-tokenizer -> model -> truncation -> post-processor ->
// padding).
#include "kpt/tokenizer.h"

#include <fstream>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/json_util.h"
#include "tokenizer/unicode.h"

namespace kpt {

using tok::Json;

// Everything one encode call mutates, pooled so that steady-state encoding does not allocate
// its buffers again (and the BPE cache survives between calls).
struct Workspace {
  tok::PreTokenized pt;
  std::vector<tok::Token> tokens;
  std::unique_ptr<tok::ModelState> model_state;
};

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Model> model;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  tok::AddedVocabulary added;
  std::optional<TruncationOptions> truncation;
  std::optional<PaddingOptions> padding;

  mutable std::mutex pool_mutex;
  mutable std::vector<std::unique_ptr<Workspace>> pool;

  std::unique_ptr<Workspace> acquire() const {
    {
      std::lock_guard<std::mutex> lock(pool_mutex);
      if (!pool.empty()) {
        auto ws = std::move(pool.back());
        pool.pop_back();
        return ws;
      }
    }
    auto ws = std::make_unique<Workspace>();
    ws->model_state = model->make_state();
    return ws;
  }
  void release(std::unique_ptr<Workspace> ws) const {
    std::lock_guard<std::mutex> lock(pool_mutex);
    pool.push_back(std::move(ws));
  }

  Encoding encode_sequence(std::string_view text, int64_t type_id) const;
};

namespace {

std::optional<TruncationOptions> parse_truncation(const Json& j, const std::string& path) {
  if (j.is_null()) return std::nullopt;
  tok::expect_object(j, path);
  TruncationOptions t;
  t.max_length = tok::as_uint(tok::require_field(j, "max_length", path), path + ".max_length");
  if (auto s = tok::get_opt_string(j, "strategy", path)) {
    if (*s == "LongestFirst" || *s == "longest_first") {
      t.strategy = TruncationStrategy::kLongestFirst;
    } else if (*s == "OnlyFirst" || *s == "only_first") {
      t.strategy = TruncationStrategy::kOnlyFirst;
    } else if (*s == "OnlySecond" || *s == "only_second") {
      t.strategy = TruncationStrategy::kOnlySecond;
    } else {
      tok::fail_file(path + ".strategy", "unknown truncation strategy '" + *s + "'");
    }
  }
  if (auto d = tok::get_opt_string(j, "direction", path)) {
    if (*d != "Right" && *d != "Left") {
      tok::fail_file(path + ".direction", "expected Right or Left, got '" + *d + "'");
    }
    t.direction = *d == "Left" ? Direction::kLeft : Direction::kRight;
  }
  return t;
}

std::optional<PaddingOptions> parse_padding(const Json& j, const std::string& path) {
  if (j.is_null()) return std::nullopt;
  tok::expect_object(j, path);
  PaddingOptions p;
  if (const Json* s = tok::find_field(j, "strategy")) {
    if (s->is_object() && s->contains("Fixed")) {
      p.fixed_length = tok::as_uint((*s)["Fixed"], path + ".strategy.Fixed");
    } else if (!(s->is_string() && s->get<std::string>() == "BatchLongest")) {
      tok::fail_file(path + ".strategy",
                     "expected \"BatchLongest\" or {\"Fixed\": n}, got " + s->dump());
    }
  }
  if (auto d = tok::get_opt_string(j, "direction", path)) {
    if (*d != "Right" && *d != "Left") {
      tok::fail_file(path + ".direction", "expected Right or Left, got '" + *d + "'");
    }
    p.direction = *d == "Left" ? Direction::kLeft : Direction::kRight;
  }
  p.pad_to_multiple_of = tok::get_uint(j, "pad_to_multiple_of", path, 0);
  p.pad_id = static_cast<int64_t>(tok::get_uint(j, "pad_id", path, 0));
  p.pad_type_id = static_cast<int64_t>(tok::get_uint(j, "pad_type_id", path, 0));
  p.pad_token = tok::get_opt_string(j, "pad_token", path).value_or("[PAD]");
  return p;
}

std::unique_ptr<tok::Model> parse_model(const Json& j) {
  const std::string path = "model";
  tok::expect_object(j, path);
  if (const Json* t = tok::find_field(j, "type")) {
    const std::string type = tok::as_string(*t, "model.type");
    if (type == "BPE") return tok::make_bpe(j, path);
    if (type == "WordPiece") return tok::make_wordpiece(j, path);
    if (type == "WordLevel") return tok::make_wordlevel(j, path);
    if (type == "Unigram") return tok::make_unigram(j, path);
    tok::fail_file("model.type", "unknown model type '" + type +
                                     "' (expected BPE, WordPiece, WordLevel or Unigram)");
  }
  // Files from before models were tagged: recognise them by their fields, in HF's order.
  if (j.contains("merges")) return tok::make_bpe(j, path);
  if (const Json* v = tok::find_field(j, "vocab")) {
    if (v->is_array()) return tok::make_unigram(j, path);
    if (j.contains("continuing_subword_prefix") || j.contains("max_input_chars_per_word")) {
      return tok::make_wordpiece(j, path);
    }
    return tok::make_wordlevel(j, path);
  }
  tok::fail_file(path, "no \"type\" and no vocab to infer the model from");
}

void truncate(Encoding& e, size_t max_length, Direction direction) {
  if (e.ids.size() <= max_length) return;
  auto cut = [&](auto& v) {
    if (direction == Direction::kRight) {
      v.resize(max_length);
    } else {
      v.erase(v.begin(), v.end() - static_cast<ptrdiff_t>(max_length));
    }
  };
  cut(e.ids);
  cut(e.type_ids);
  cut(e.attention_mask);
  cut(e.special_tokens_mask);
  cut(e.tokens);
  cut(e.offsets);
}

// HF utils::truncation::truncate_encodings.
void truncate_encodings(Encoding& first, std::optional<Encoding>& second,
                        const TruncationOptions& t, size_t max_length) {
  if (max_length == 0) {
    truncate(first, 0, t.direction);
    if (second) truncate(*second, 0, t.direction);
    return;
  }
  const size_t total = first.size() + (second ? second->size() : 0);
  if (total <= max_length) return;
  const size_t to_remove = total - max_length;
  if (t.strategy == TruncationStrategy::kLongestFirst) {
    if (!second) {
      truncate(first, total - to_remove, t.direction);
      return;
    }
    size_t n1 = first.size(), n2 = second->size();
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);
    n2 = n1 > max_length ? n1 : std::max(n1, max_length - n1);
    if (n1 + n2 > max_length) {
      n1 = max_length / 2;
      n2 = n1 + max_length % 2;
    }
    if (swap) std::swap(n1, n2);
    truncate(first, n1, t.direction);
    truncate(*second, n2, t.direction);
    return;
  }
  Encoding* target = &first;
  if (t.strategy == TruncationStrategy::kOnlySecond) {
    if (!second) {
      throw Error(ErrorCode::kInvalidArgument,
                  "truncation strategy only_second needs a pair of sequences");
    }
    target = &*second;
  }
  if (target->size() <= to_remove) {
    throw Error(ErrorCode::kInvalidArgument,
                "truncation: the sequence to truncate is too short to respect max_length " +
                    std::to_string(max_length));
  }
  truncate(*target, target->size() - to_remove, t.direction);
}

void append(Encoding& dst, Encoding&& src) {
  auto cat = [](auto& a, auto& b) {
    a.insert(a.end(), std::make_move_iterator(b.begin()), std::make_move_iterator(b.end()));
  };
  cat(dst.ids, src.ids);
  cat(dst.type_ids, src.type_ids);
  cat(dst.attention_mask, src.attention_mask);
  cat(dst.special_tokens_mask, src.special_tokens_mask);
  cat(dst.tokens, src.tokens);
  cat(dst.offsets, src.offsets);
}

void pad(Encoding& e, size_t length, const PaddingOptions& p) {
  if (e.size() >= length) return;
  const size_t n = length - e.size();
  auto grow = [&](auto& v, const auto& value) {
    if (p.direction == Direction::kRight) {
      v.insert(v.end(), n, value);
    } else {
      v.insert(v.begin(), n, value);
    }
  };
  grow(e.ids, p.pad_id);
  grow(e.type_ids, p.pad_type_id);
  grow(e.attention_mask, int64_t{0});
  grow(e.special_tokens_mask, int64_t{1});
  grow(e.tokens, p.pad_token);
  grow(e.offsets, std::pair<size_t, size_t>{0, 0});
}

size_t padded_length(size_t length, const PaddingOptions& p) {
  if (p.pad_to_multiple_of > 0 && length % p.pad_to_multiple_of != 0) {
    length += p.pad_to_multiple_of - length % p.pad_to_multiple_of;
  }
  return length;
}

void check_utf8(std::string_view text) {
  const size_t bad = tok::uni::find_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    throw Error(ErrorCode::kInvalidArgument,
                "tokenizer input is not valid UTF-8 (first bad byte at offset " +
                    std::to_string(bad) + ")");
  }
  if (text.size() > UINT32_MAX / 4) {
    throw Error(ErrorCode::kInvalidArgument,
                "tokenizer input of " + std::to_string(text.size()) + " bytes is too long");
  }
}

}  // namespace

Encoding Tokenizer::Impl::encode_sequence(std::string_view text, int64_t type_id) const {
  check_utf8(text);
  std::unique_ptr<Workspace> ws = acquire();
  tok::PreTokenized& pt = ws->pt;
  pt.arena.clear();
  pt.pieces.clear();
  // Identity alignments: each byte points at its whole char, as HF's NormalizedString::from.
  pt.arena.text.assign(text);
  pt.arena.align.resize(text.size());
  uint32_t len;
  for (uint32_t i = 0; i < text.size(); i += len) {
    len = tok::uni::utf8_len(static_cast<unsigned char>(text[i]));
    for (uint32_t k = 0; k < len; ++k) pt.arena.align[i + k] = {i, i + len};
  }
  if (!text.empty()) pt.pieces.push_back({0, static_cast<uint32_t>(text.size()), -1});

  added.extract_and_normalize(pt, normalizer.get());
  if (pre_tokenizer) pre_tokenizer->pre_tokenize(pt);

  Encoding e;
  auto push = [&](int32_t id, uint32_t b, uint32_t end, std::string token) {
    e.ids.push_back(id);
    e.tokens.push_back(std::move(token));
    if (end > b) {
      e.offsets.emplace_back(pt.arena.align[b].start, pt.arena.align[end - 1].end);
    } else {
      const size_t at = b < pt.arena.size() ? pt.arena.align[b].start : 0;
      e.offsets.emplace_back(at, at);
    }
  };
  for (const tok::Piece& p : pt.pieces) {
    if (p.added_id >= 0) {
      push(p.added_id, p.begin, p.end, std::string(pt.view(p)));
      continue;
    }
    ws->tokens.clear();
    const std::string_view piece = pt.view(p);
    model->tokenize(piece, ws->model_state.get(), ws->tokens);
    for (const tok::Token& t : ws->tokens) {
      const std::string* value = t.text_is_value ? nullptr : model->id_to_token(t.id);
      push(t.id, p.begin + t.begin, p.begin + t.end,
           value ? *value : std::string(piece.substr(t.begin, t.end - t.begin)));
    }
  }
  release(std::move(ws));
  e.type_ids.assign(e.ids.size(), type_id);
  e.attention_mask.assign(e.ids.size(), 1);
  e.special_tokens_mask.assign(e.ids.size(), 0);
  return e;
}

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl)
    : impl_(std::move(impl)), truncation_(impl_->truncation), padding_(impl_->padding) {}
Tokenizer::Tokenizer(const Tokenizer&) = default;
Tokenizer& Tokenizer::operator=(const Tokenizer&) = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open tokenizer file '" + path + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::kIo, "cannot read tokenizer file '" + path + "'");
  try {
    return from_json(buffer.str());
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

Tokenizer Tokenizer::from_json(std::string_view json_text) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    throw Error(ErrorCode::kInvalidFile,
                std::string("tokenizer.json is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) tok::fail_file("(root)", "expected an object, got " + tok::json_kind(j));
  try {
    auto impl = std::make_shared<Impl>();
    if (auto v = tok::get_opt_string(j, "version", "(root)"); v && *v != "1.0") {
      tok::fail_file("version", "unknown tokenizer version '" + *v + "' (expected 1.0)");
    }
    if (const Json* n = tok::find_field(j, "normalizer")) {
      impl->normalizer = tok::make_normalizer(*n, "normalizer");
    }
    if (const Json* p = tok::find_field(j, "pre_tokenizer")) {
      impl->pre_tokenizer = tok::make_pre_tokenizer(*p, "pre_tokenizer");
    }
    impl->model = parse_model(tok::require_field(j, "model", "(root)"));
    if (const Json* p = tok::find_field(j, "post_processor")) {
      impl->post_processor = tok::make_post_processor(*p, "post_processor");
    }
    if (const Json* d = tok::find_field(j, "decoder"))
      impl->decoder = tok::make_decoder(*d, "decoder");
    if (const Json* a = tok::find_field(j, "added_tokens")) {
      impl->added.load(*a, "added_tokens", *impl->model, impl->normalizer.get());
    }
    if (j.contains("truncation"))
      impl->truncation = parse_truncation(j["truncation"], "truncation");
    if (j.contains("padding")) impl->padding = parse_padding(j["padding"], "padding");
    return Tokenizer(std::move(impl));
  } catch (const Json::exception& e) {
    // Guards against a type mismatch the typed accessors missed.
    throw Error(ErrorCode::kInvalidFile, std::string("tokenizer.json: ") + e.what());
  }
}

Encoding Tokenizer::post_process(Encoding first, std::optional<Encoding> second,
                                 bool add_special_tokens) const {
  const Impl& im = *impl_;
  if (truncation_) {
    const size_t n_added =
        im.post_processor ? im.post_processor->added_tokens(second.has_value()) : 0;
    size_t max_length = truncation_->max_length;
    if (add_special_tokens && n_added > 0) {
      // HF subtracts in usize; a max_length below the special tokens wraps to "no limit".
      max_length = max_length >= n_added ? max_length - n_added : SIZE_MAX;
    }
    truncate_encodings(first, second, *truncation_, max_length);
  }
  Encoding out;
  if (im.post_processor) {
    std::vector<Encoding> parts;
    parts.push_back(std::move(first));
    if (second) parts.push_back(std::move(*second));
    for (size_t i = 0; i < parts.size(); ++i) {
      std::fill(parts[i].type_ids.begin(), parts[i].type_ids.end(), static_cast<int64_t>(i));
    }
    im.post_processor->process_encodings(parts, add_special_tokens);
    for (Encoding& p : parts) append(out, std::move(p));
  } else {
    out = std::move(first);
    if (second) append(out, std::move(*second));
  }
  if (padding_) {
    // A lone encoding is its own batch: BatchLongest still rounds up to pad_to_multiple_of.
    const size_t length = padding_->fixed_length.value_or(out.size());
    pad(out, padded_length(length, *padding_), *padding_);
  }
  return out;
}

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return post_process(impl_->encode_sequence(text, 0), std::nullopt, add_special_tokens);
}

Encoding Tokenizer::encode_pair(std::string_view first, std::string_view second,
                                bool add_special_tokens) const {
  return post_process(impl_->encode_sequence(first, 0), impl_->encode_sequence(second, 1),
                      add_special_tokens);
}

std::vector<Encoding> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                              bool add_special_tokens) const {
  std::vector<Encoding> out;
  out.reserve(texts.size());
  for (const std::string& t : texts) out.push_back(encode(t, add_special_tokens));
  if (padding_ && !padding_->fixed_length && !out.empty()) {
    size_t longest = 0;
    for (const Encoding& e : out) longest = std::max(longest, e.size());
    const size_t length = padded_length(longest, *padding_);
    for (Encoding& e : out) pad(e, length, *padding_);
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int64_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    const std::string* token = nullptr;
    if (id >= 0 && id <= INT32_MAX) {
      token = im.added.decode_string(static_cast<int32_t>(id));
      if (token == nullptr) token = im.model->id_to_token(static_cast<int32_t>(id));
    }
    if (token == nullptr) {
      throw Error(ErrorCode::kOutOfRange, "decode: token id " + std::to_string(id) +
                                              " is not in the vocabulary (size " +
                                              std::to_string(vocab_size(true)) + ")");
    }
    if (skip_special_tokens && im.added.is_special(*token)) continue;
    tokens.push_back(*token);
  }
  if (!im.decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  im.decoder->decode_chain(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

std::optional<int64_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.token_to_id(token)) return *id;
  if (auto id = impl_->model->token_to_id(token)) return *id;
  return std::nullopt;
}

std::optional<std::string> Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id > INT32_MAX) return std::nullopt;
  if (const tok::AddedToken* t = impl_->added.find(static_cast<int32_t>(id))) return t->content;
  if (const std::string* s = impl_->model->id_to_token(static_cast<int32_t>(id))) return *s;
  return std::nullopt;
}

int64_t Tokenizer::vocab_size(bool with_added_tokens) const {
  const auto base = static_cast<int64_t>(impl_->model->vocab_size());
  if (!with_added_tokens) return base;
  int64_t extra = 0;
  for (const auto& [content, id] : impl_->added.contents()) {
    if (!impl_->model->token_to_id(content)) ++extra;
  }
  return base + extra;
}

void Tokenizer::set_truncation(std::optional<TruncationOptions> options) {
  truncation_ = std::move(options);
}
void Tokenizer::set_padding(std::optional<PaddingOptions> options) {
  padding_ = std::move(options);
}
const std::optional<TruncationOptions>& Tokenizer::truncation() const {
  return truncation_;
}
const std::optional<PaddingOptions>& Tokenizer::padding() const {
  return padding_;
}

}  // namespace kpt
