// Parity with Hugging Face tokenizers: every reference in tests/fixtures/tokenizer/reference
// (written by scripts/tokenizer/make_reference.py) must be reproduced exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "kpt/status.h"
#include "test_util.h"

namespace kpt::tok_test {
namespace {

using nlohmann::json;

std::vector<std::string> reference_names() {
  std::vector<std::string> names;
  const auto dir = fixture_dir() / "reference";
  if (!std::filesystem::exists(dir)) return names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string digits(const std::vector<int64_t>& v) {
  std::string s;
  for (int64_t x : v) s += std::to_string(x);
  return s;
}

std::string show(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(v[i]);
  }
  return s + "]";
}

std::string test_name(std::string n) {
  std::replace_if(
      n.begin(), n.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
  return n;
}

class Parity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = json::parse(read_file(fixture_dir() / "reference" / (GetParam() + ".json")));
    corpus_ = json::parse(read_file(fixture_dir() / "corpus.json"));
    std::string why;
    tokenizer_ = load_source(ref_["tokenizer"].get<std::string>(), &why);
    if (!tokenizer_) GTEST_SKIP() << why;
  }

  std::string text(size_t i) const { return corpus_["texts"][i].get<std::string>(); }

  // Compares one encoding with its reference case; `what` names the case in failures.
  void check_case(const json& c, const std::function<Encoding()>& encode, const std::string& what,
                  bool offsets_only) {
    if (c.contains("error")) {
      if (!offsets_only) {
        EXPECT_THROW(encode(), kpt::Error) << what << ": HF raised " << c["error"];
      }
      return;
    }
    Encoding e;
    try {
      e = encode();
    } catch (const std::exception& ex) {
      ADD_FAILURE() << what << ": threw " << ex.what();
      return;
    }
    const std::string attn = c["attn"].get<std::string>();
    std::vector<int64_t> kept;  // ids at non-padding positions
    std::vector<std::string> kept_tokens;
    std::vector<size_t> kept_offsets;
    for (size_t i = 0; i < e.ids.size() && i < attn.size(); ++i) {
      if (attn[i] != '1') continue;
      kept.push_back(e.ids[i]);
      kept_tokens.push_back(e.tokens[i]);
      kept_offsets.push_back(e.offsets[i].first);
      kept_offsets.push_back(e.offsets[i].second);
    }
    if (offsets_only) {
      if (c.contains("offsets")) {
        EXPECT_EQ(kept_offsets, c["offsets"].get<std::vector<size_t>>()) << what;
      }
      return;
    }
    const auto ref_ids = c["ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(show(kept), show(ref_ids)) << what << ": ids";
    EXPECT_EQ(digits(e.attention_mask), attn) << what << ": attention_mask";
    EXPECT_EQ(digits(e.type_ids), c["types"].get<std::string>()) << what << ": type_ids";
    EXPECT_EQ(digits(e.special_tokens_mask), c["special"].get<std::string>())
        << what << ": special_tokens_mask";
    for (size_t i = 0; i < e.ids.size() && i < attn.size(); ++i) {
      if (attn[i] == '0') {
        EXPECT_EQ(e.ids[i], ref_["pad_id"].get<int64_t>()) << what << ": pad id";
      }
    }
    if (c.contains("tokens")) {
      EXPECT_EQ(kept_tokens, c["tokens"].get<std::vector<std::string>>()) << what << ": tokens";
    }
    const std::string dec = c["dec"].get<std::string>();
    EXPECT_EQ(tokenizer_->decode(e.ids, true), dec) << what << ": decode(skip_special_tokens)";
    EXPECT_EQ(tokenizer_->decode(e.ids, false), c.value("dec_all", dec)) << what << ": decode(all)";
  }

  void check_plain(const json& c, const Encoding& plain, const std::string& what) {
    if (c.contains("error")) return;
    std::vector<int64_t> expected;
    if (c.contains("ids_plain")) {
      expected = c["ids_plain"].get<std::vector<int64_t>>();
    } else {
      const auto ids = c["ids"].get<std::vector<int64_t>>();
      const std::string special = c["special"].get<std::string>();
      const std::string attn = c["attn"].get<std::string>();
      size_t k = 0;
      for (size_t i = 0; i < attn.size(); ++i) {
        if (attn[i] != '1') continue;
        if (special[i] == '0') expected.push_back(ids[k]);
        ++k;
      }
    }
    std::vector<int64_t> got;
    for (size_t i = 0; i < plain.ids.size(); ++i) {
      if (plain.attention_mask[i] == 1) got.push_back(plain.ids[i]);
    }
    EXPECT_EQ(show(got), show(expected)) << what << ": ids without special tokens";
  }

  void run(bool offsets_only) {
    const auto& texts = ref_["texts"];
    for (size_t i = 0; i < texts.size(); ++i) {
      if (texts[i].is_null()) continue;
      const std::string t = text(i);
      const std::string what = "text #" + std::to_string(i) + " " + json(t).dump();
      check_case(
          texts[i], [&] { return tokenizer_->encode(t, true); }, what, offsets_only);
      if (!offsets_only && !texts[i].contains("error")) {
        check_plain(texts[i], tokenizer_->encode(t, false), what);
      }
    }
    const auto& pairs = ref_["pairs"];
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (pairs[i].is_null()) continue;
      const auto idx = corpus_["pairs"][i];
      const std::string a = text(idx[0].get<size_t>()), b = text(idx[1].get<size_t>());
      const std::string what =
          "pair #" + std::to_string(i) + " " + json(a).dump() + " / " + json(b).dump();
      check_case(
          pairs[i], [&] { return tokenizer_->encode_pair(a, b, true); }, what, offsets_only);
      if (!offsets_only && !pairs[i].contains("error")) {
        try {
          check_plain(pairs[i], tokenizer_->encode_pair(a, b, false), what);
        } catch (const kpt::Error& ex) {
          ADD_FAILURE() << what << ": threw " << ex.what();
        }
      }
    }
  }

  json ref_, corpus_;
  std::optional<Tokenizer> tokenizer_;
};

TEST_P(Parity, EncodeAndDecode) {
  run(false);
}

TEST_P(Parity, Offsets) {
  run(true);
}

TEST_P(Parity, BatchPadding) {
  const auto& batch = ref_["batch"];
  std::vector<std::string> texts;
  for (size_t i = 0; i < 8; ++i) texts.push_back(text(i));
  if (batch.is_object()) {
    EXPECT_THROW(tokenizer_->encode_batch(texts), kpt::Error);
    return;
  }
  const auto out = tokenizer_->encode_batch(texts);
  ASSERT_EQ(out.size(), batch.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(show(out[i].ids), show(batch[i]["ids"].get<std::vector<int64_t>>()))
        << "batch item " << i;
    EXPECT_EQ(digits(out[i].attention_mask), batch[i]["attn"].get<std::string>())
        << "batch item " << i;
  }
}

TEST_P(Parity, DecodeArbitraryIds) {
  for (const auto& c : ref_["decode"]) {
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    const std::string dec = c["dec"].get<std::string>();
    EXPECT_EQ(tokenizer_->decode(ids, true), dec) << "ids " << show(ids);
    EXPECT_EQ(tokenizer_->decode(ids, false), c.value("dec_all", dec)) << "ids " << show(ids);
  }
}

TEST_P(Parity, Vocabulary) {
  EXPECT_EQ(tokenizer_->vocab_size(true), ref_["vocab_size"].get<int64_t>());
  EXPECT_EQ(tokenizer_->vocab_size(false), ref_["vocab_size_base"].get<int64_t>());
  for (const auto& [token, id] : ref_["token_to_id"].items()) {
    const auto ours = tokenizer_->token_to_id(token);
    if (id.is_null()) {
      EXPECT_FALSE(ours.has_value()) << token;
    } else {
      ASSERT_TRUE(ours.has_value()) << token;
      EXPECT_EQ(*ours, id.get<int64_t>()) << token;
      EXPECT_EQ(tokenizer_->id_to_token(*ours).value_or("?"), token);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Parity, ::testing::ValuesIn(reference_names()),
                         [](const auto& param_info) { return test_name(param_info.param); });

}  // namespace
}  // namespace kpt::tok_test
