// Tokenizer pieces tested directly: the cluster-wise Unicode normalization against its
// whole-string reference, lossy UTF-8, and API invariants (batch == single, threads, copies).
#include <gtest/gtest.h>

#include <thread>

#include "kpt/status.h"
#include "test_util.h"
#include "tokenizer/internal.h"
#include "tokenizer/unicode.h"

namespace kpt::tok_test {
namespace {

std::vector<std::string> corpus_texts() {
  return nlohmann::json::parse(read_file(fixture_dir() / "corpus.json"))["texts"]
      .get<std::vector<std::string>>();
}

TEST(TokenizerUnicode, ClusterNormalizationMatchesWholeString) {
  using tok::uni::NormForm;
  std::vector<std::string> texts = corpus_texts();
  // Reordering and composition across what could look like cluster edges.
  texts.push_back(
      "a\u0328\u0301\u0307 \u1100\u1161\u11a8\u11a8 \uff76\uff9e \u0f73\u0f71 \u0d46\u0d3e");
  texts.push_back("\u1e9b\u0323 \u212b \u2126 \u00c5\u0301 q\u0307\u0323 \uac00\u11a8");
  for (NormForm form : {NormForm::kNFC, NormForm::kNFD, NormForm::kNFKC, NormForm::kNFKD}) {
    for (const std::string& t : texts) {
      std::vector<tok::Align> align(t.size(), tok::Align{0, 1});
      tok::AlignedText out;
      const bool changed = tok::uni::normalize(form, t, align.data(), out);
      const std::string got = changed ? out.text : t;
      EXPECT_EQ(got, tok::uni::normalize_reference(form, t)) << static_cast<int>(form) << " " << t;
      EXPECT_EQ(out.align.size(), out.text.size());
    }
  }
}

TEST(TokenizerUnicode, LossyUtf8LikeRust) {
  EXPECT_EQ(tok::utf8_lossy("ok"), "ok");
  EXPECT_EQ(tok::utf8_lossy("\xF0\x9F\x98"), "\xEF\xBF\xBD");  // truncated 4-byte sequence
  EXPECT_EQ(tok::utf8_lossy("a\xFF"
                            "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(tok::utf8_lossy("\xE0\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(tok::utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

class RealTokenizer : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    tokenizer_ = load_source(GetParam(), &why);
    if (!tokenizer_) GTEST_SKIP() << why;
  }
  std::optional<Tokenizer> tokenizer_;
};

TEST_P(RealTokenizer, BatchEqualsSingle) {
  Tokenizer t = *tokenizer_;
  t.set_padding(std::nullopt);
  const auto texts = corpus_texts();
  const auto batch = t.encode_batch(texts);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i].ids, t.encode(texts[i]).ids) << i;
}

TEST_P(RealTokenizer, ThreadsAgreeWithSingleThread) {
  const auto texts = corpus_texts();
  std::vector<std::vector<int64_t>> expected;
  for (const auto& s : texts) expected.push_back(tokenizer_->encode(s).ids);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          failures[static_cast<size_t>(w)] += tokenizer_->encode(texts[i]).ids != expected[i];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST_P(RealTokenizer, CopiesConfigureIndependently) {
  Tokenizer copy = *tokenizer_;
  copy.set_truncation(TruncationOptions{4, TruncationStrategy::kLongestFirst, Direction::kRight});
  PaddingOptions pad;
  pad.fixed_length = 6;
  pad.pad_id = 0;
  copy.set_padding(pad);
  const std::string text = "a fairly long sentence with many words in it";
  const Encoding short_enc = copy.encode(text);
  EXPECT_EQ(short_enc.ids.size(), 6u);
  EXPECT_EQ(std::count(short_enc.attention_mask.begin(), short_enc.attention_mask.end(), 1), 4);
  Tokenizer fresh = *tokenizer_;
  fresh.set_padding(std::nullopt);
  fresh.set_truncation(std::nullopt);
  EXPECT_GT(fresh.encode(text).ids.size(), 6u);
}

TEST_P(RealTokenizer, RoundTripsPlainText) {
  const std::string text = "Hello world, this is a plain sentence.";
  Tokenizer t = *tokenizer_;
  t.set_padding(std::nullopt);
  const std::string decoded = t.decode(t.encode(text).ids);
  // Uncased vocabularies lowercase; everything else must give the text back.
  if (GetParam().find("uncased") == std::string::npos) {
    EXPECT_EQ(decoded, text);
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, RealTokenizer,
                         ::testing::Values("shared:gpt2", "shared:bert-base-uncased",
                                           "shared:qwen3", "shared:sp-bpe-32k"),
                         [](const auto& param_info) {
                           std::string n = param_info.param.substr(7);
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace kpt::tok_test
