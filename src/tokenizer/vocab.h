// Vocabulary containers shared by the models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/internal.h"

namespace kpt::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept {
    // FNV-1a: short keys dominate (tokens, words), where it beats std::hash's murmur setup.
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// token -> id and id -> token, as every model keeps them.
struct Vocab {
  StringMap<int32_t> to_id;
  std::vector<std::string> to_token;  // by id; `present` tells the holes apart
  std::vector<bool> present;

  std::optional<int32_t> find(std::string_view token) const {
    auto it = to_id.find(token);
    if (it == to_id.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= to_token.size() || !present[static_cast<size_t>(id)]) {
      return nullptr;
    }
    return &to_token[static_cast<size_t>(id)];
  }
  void add(std::string token, int32_t id) {
    if (static_cast<size_t>(id) >= to_token.size()) {
      to_token.resize(static_cast<size_t>(id) + 1);
      present.resize(static_cast<size_t>(id) + 1, false);
    }
    to_token[static_cast<size_t>(id)] = token;
    present[static_cast<size_t>(id)] = true;
    to_id[std::move(token)] = id;
  }
};

// Reads a {"token": id, ...} object.
Vocab parse_vocab_object(const Json& j, const std::string& path);

}  // namespace kpt::tok
