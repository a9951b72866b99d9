#include "serve/text_stream.h"

#include <algorithm>

namespace kpt::serve {

namespace {
// Decoding a window that ends inside a multi-byte character yields U+FFFD at its end.
bool ends_incomplete(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {
  for (auto& s : stop) {
    if (!s.empty()) stop_.push_back(std::move(s));
  }
}

std::string TextStream::push(int64_t token) {
  if (stopped_) return {};
  ids_.push_back(token);
  // Decode a short window [prefix_offset, end) and take what it adds beyond [prefix, read):
  // decoders that strip a leading space or merge bytes then behave as on the whole text.
  std::span<const int64_t> all(ids_);
  const std::string prefix = tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  const std::string full = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_);
  if (full.size() > prefix.size() && !ends_incomplete(full) && full.compare(0, prefix.size(), prefix) == 0) {
    pending_ += full.substr(prefix.size());
    prefix_offset_ = read_offset_;
    read_offset_ = ids_.size();
  }
  return take_safe(false);
}

std::string TextStream::finish() {
  if (stopped_) return {};
  if (read_offset_ < ids_.size()) {
    // Whatever is left (e.g. a dangling partial character) is emitted as the decoder gives it.
    std::span<const int64_t> all(ids_);
    const std::string prefix = tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
    const std::string full = tokenizer_.decode(all.subspan(prefix_offset_), skip_special_);
    if (full.size() > prefix.size() && full.compare(0, prefix.size(), prefix) == 0) pending_ += full.substr(prefix.size());
    read_offset_ = ids_.size();
  }
  return take_safe(true);
}

std::string TextStream::take_safe(bool final) {
  // A stop sequence may span tokens: search the emitted tail + pending text.
  size_t max_stop = 0;
  for (const auto& s : stop_) max_stop = std::max(max_stop, s.size());
  if (!stop_.empty()) {
    const size_t tail = std::min(emitted_.size(), max_stop - 1);
    const std::string window = emitted_.substr(emitted_.size() - tail) + pending_;
    size_t best = std::string::npos;
    for (const auto& s : stop_) best = std::min(best, window.find(s));
    if (best != std::string::npos) {
      // The stop sequence begins at or after the emitted part (earlier text had no match).
      const size_t cut = best >= tail ? best - tail : 0;
      std::string out = pending_.substr(0, cut);
      pending_.clear();
      emitted_ += out;
      stopped_ = true;
      return out;
    }
  }
  size_t keep = 0;  // longest suffix of pending_ that is a proper prefix of a stop sequence
  if (!final) {
    for (const auto& s : stop_) {
      for (size_t n = std::min(s.size() - 1, pending_.size()); n > keep; --n) {
        if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
          keep = n;
          break;
        }
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, out.size());
  emitted_ += out;
  return out;
}

}  // namespace kpt::serve
