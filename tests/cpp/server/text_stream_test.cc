// Incremental detokenization equals decoding the whole output; stop sequences are cut out even
// when they span tokens; text that might start a stop sequence is held back, then released.
#include <gtest/gtest.h>

#include "serve/text_stream.h"
#include "tokenizer/test_util.h"

namespace kpt::serve {
namespace {

std::optional<Tokenizer> gpt2() {
  const auto path = tok_test::shared_tokenizer("gpt2");
  if (!std::filesystem::exists(path)) return std::nullopt;
  return Tokenizer::from_file(path.string());
}

std::string stream_all(const Tokenizer& tok, const std::vector<int64_t>& ids, std::vector<std::string> stop,
                       bool* stopped = nullptr, std::vector<std::string>* pieces = nullptr) {
  TextStream ts(tok, std::move(stop));
  std::string out;
  for (int64_t id : ids) {
    std::string p = ts.push(id);
    if (pieces && !p.empty()) pieces->push_back(p);
    out += p;
  }
  out += ts.finish();
  if (stopped) *stopped = ts.stopped();
  EXPECT_EQ(out, ts.text());
  return out;
}

TEST(TextStream, EqualsWholeDecodeOnMultibyteText) {
  auto tok = gpt2();
  if (!tok) GTEST_SKIP() << "shared gpt2 tokenizer not found";
  for (const std::string text : {"héllo wörld, 你好世界 🙂🙂 naïve café", "plain ascii text only", "  leading spaces\n\nand lines",
                                 "emoji at the end 🚀"}) {
    const auto ids = tok->encode(text, false).ids;
    std::vector<std::string> pieces;
    EXPECT_EQ(stream_all(*tok, ids, {}, nullptr, &pieces), tok->decode(ids)) << text;
    for (const auto& p : pieces) EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "half a character: " << text;
  }
}

TEST(TextStream, StopSequenceSpanningTokensIsCutOut) {
  auto tok = gpt2();
  if (!tok) GTEST_SKIP() << "shared gpt2 tokenizer not found";
  const auto ids = tok->encode("The answer is 42. User: next question", false).ids;
  bool stopped = false;
  EXPECT_EQ(stream_all(*tok, ids, {"User:"}, &stopped), "The answer is 42. ");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(stream_all(*tok, ids, {"ser: n", "42"}, &stopped), "The answer is ");  // the earliest match wins
  EXPECT_EQ(stream_all(*tok, ids, {"absent"}, &stopped), "The answer is 42. User: next question");
  EXPECT_FALSE(stopped);
}

TEST(TextStream, HeldBackPrefixIsReleased) {
  auto tok = gpt2();
  if (!tok) GTEST_SKIP() << "shared gpt2 tokenizer not found";
  const auto ids = tok->encode("a b c", false).ids;  // "a", " b", " c"
  TextStream ts(*tok, {" b d"});
  EXPECT_EQ(ts.push(ids[0]), "a");
  EXPECT_EQ(ts.push(ids[1]), "");  // " b" could start " b d"
  EXPECT_EQ(ts.push(ids[2]), " b c");
  EXPECT_EQ(ts.finish(), "");
  TextStream ts2(*tok, {" b d"});
  ts2.push(ids[0]);
  ts2.push(ids[1]);
  EXPECT_EQ(ts2.finish(), " b");  // the end of generation releases what was held
  EXPECT_FALSE(ts2.stopped());
}

}  // namespace
}  // namespace kpt::serve
