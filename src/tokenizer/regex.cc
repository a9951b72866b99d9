// PCRE2 behind the Oniguruma patterns of tokenizer.json (HF compiles them with onig).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/internal.h"
#include "tokenizer/unicode.h"

namespace kpt::tok {
namespace {

// Oniguruma's Unicode classes differ from PCRE2's under PCRE2_UCP: onig's \s is White_Space
// (PCRE2 misses U+0085) and onig's \w includes marks and excludes No/Nl numbers. Rewrite them
// into explicit classes so both engines agree.
constexpr std::string_view kWordClass = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
constexpr std::string_view kSpaceClass = "\\s\\x{85}";

std::string translate_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  bool in_class = false;
  size_t class_start = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      // (appends piecewise: operator+ on these trips a false -Wrestrict in GCC 12)
      auto put_class = [&](std::string_view cls, bool negate) {
        if (in_class) {
          out.append(cls);
          return;
        }
        out.append(negate ? "[^" : "[");
        out.append(cls);
        out.push_back(']');
      };
      if (e == 's') {
        put_class(kSpaceClass, false);
      } else if (e == 'S' && !in_class) {
        put_class(kSpaceClass, true);
      } else if (e == 'w') {
        put_class(kWordClass, false);
      } else if (e == 'W' && !in_class) {
        put_class(kWordClass, true);
      } else {
        const uint32_t len = uni::utf8_len(static_cast<unsigned char>(e));
        out += c;
        out.append(p.substr(i + 1, len));
        i += len;
        continue;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      class_start = i;
    } else if (in_class && c == ']') {
      // A ']' right after '[' or '[^' is a literal.
      const bool literal = i == class_start + 1 || (i == class_start + 2 && p[i - 1] == '^');
      if (!literal) in_class = false;
    }
    out += c;
  }
  return out;
}

struct Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

// Per-thread match state: match data and a JIT stack large enough for long words.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Regex::Regex(std::string_view pattern, const std::string& path) {
  const std::string translated = translate_pattern(pattern);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    fail_file(path, "invalid regex '" + std::string(pattern) +
                        "': " + reinterpret_cast<const char*>(message) + " at offset " +
                        std::to_string(error_offset));
  }
  // Without JIT (unsupported CPU) pcre2_match interprets; results are the same.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  auto holder = std::make_shared<Code>();
  holder->code = code;
  code_ = holder;
}

Regex Regex::literal(std::string_view text, const std::string& path) {
  std::string escaped;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) escaped += '\\';
    escaped += c;
  }
  return Regex(escaped, path);
}

void Regex::find_all(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  pcre2_code* code = static_cast<Code*>(code_.get())->code;
  MatchState& st = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t pos = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (pos <= n) {
    int rc = pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Pathological input for the JIT stack: the interpreter keeps its frames on the heap.
      rc = pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, st.data, nullptr);
    }
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH (or a resource limit: stop like onig does)
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t s = ov[0];
    const size_t e = ov[1];
    // Like onig's find_iter: an empty match right where the previous match ended is skipped
    // by moving one char forward.
    if (s == e && have_last && last_end == e) {
      if (pos >= n) break;
      pos += uni::utf8_len(static_cast<unsigned char>(text[pos]));
      continue;
    }
    out.emplace_back(static_cast<uint32_t>(s), static_cast<uint32_t>(e));
    have_last = true;
    last_end = e;
    pos = e;
  }
}

void Regex::find_spans(std::string_view text, std::vector<Span>& out) const {
  if (text.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  thread_local std::vector<std::pair<uint32_t, uint32_t>> matches;
  matches.clear();
  find_all(text, matches);
  uint32_t prev = 0;
  for (const auto& [s, e] : matches) {
    if (prev != s) out.push_back({prev, s, false});
    out.push_back({s, e, true});
    prev = e;
  }
  if (prev != text.size()) out.push_back({prev, static_cast<uint32_t>(text.size()), false});
}

void split_by_spans(const std::vector<Span>& spans, SplitBehavior behavior, const Piece& p,
                    std::vector<Piece>& out) {
  auto emit = [&](uint32_t b, uint32_t e) { out.push_back({p.begin + b, p.begin + e, -1}); };
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) emit(s.begin, s.end);
      return;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.is_match) emit(s.begin, s.end);
      }
      return;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      const bool contiguous = behavior == SplitBehavior::kContiguous;
      const size_t first = out.size();
      bool previous_match = false;
      for (const Span& s : spans) {
        const bool merge =
            contiguous ? s.is_match == previous_match : (s.is_match && !previous_match);
        if (merge && out.size() > first) {
          out.back().end = p.begin + s.end;
        } else {
          emit(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      // Built right to left like HF, then reversed into place.
      const size_t first = out.size();
      bool previous_match = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& s = spans[k];
        if (s.is_match && !previous_match && out.size() > first) {
          out.back().begin = p.begin + s.begin;
        } else {
          emit(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      std::reverse(out.begin() + static_cast<ptrdiff_t>(first), out.end());
      return;
    }
  }
}

SplitBehavior parse_split_behavior(const Json& j, const std::string& path) {
  if (!j.is_string()) fail_file(path, "expected a split behavior string, got " + j.dump());
  const std::string s = j.get<std::string>();
  // tokenizer.json spells them in PascalCase; the Python API in snake_case.
  if (s == "Removed" || s == "removed") return SplitBehavior::kRemoved;
  if (s == "Isolated" || s == "isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious" || s == "merged_with_previous") {
    return SplitBehavior::kMergedWithPrevious;
  }
  if (s == "MergedWithNext" || s == "merged_with_next") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous" || s == "contiguous") return SplitBehavior::kContiguous;
  fail_file(path, "unknown split behavior '" + s +
                      "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or "
                      "Contiguous)");
}

}  // namespace kpt::tok
