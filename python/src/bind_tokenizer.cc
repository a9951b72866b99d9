// kpt::Tokenizer and kpt::Encoding. The Python wrapper (kernel_pytorch/tokenizer.py) adds the
// transformers call conventions on top; this layer only exposes the C++ API.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "kpt/status.h"
#include "kpt/tokenizer.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace kpt::python {

namespace {

Direction parse_direction(const std::string& s) {
  if (s == "right") return Direction::kRight;
  if (s == "left") return Direction::kLeft;
  throw Error(ErrorCode::kInvalidArgument, "direction must be 'right' or 'left', got '" + s + "'");
}

const char* direction_name(Direction d) { return d == Direction::kLeft ? "left" : "right"; }

TruncationStrategy parse_strategy(const std::string& s) {
  if (s == "longest_first") return TruncationStrategy::kLongestFirst;
  if (s == "only_first") return TruncationStrategy::kOnlyFirst;
  if (s == "only_second") return TruncationStrategy::kOnlySecond;
  throw Error(ErrorCode::kInvalidArgument,
              "truncation strategy must be 'longest_first', 'only_first' or 'only_second', got '" + s + "'");
}

const char* strategy_name(TruncationStrategy s) {
  switch (s) {
    case TruncationStrategy::kLongestFirst: return "longest_first";
    case TruncationStrategy::kOnlyFirst: return "only_first";
    case TruncationStrategy::kOnlySecond: return "only_second";
  }
  return "?";
}

}  // namespace

void bind_tokenizer(nb::module_& m) {
  nb::class_<Encoding>(m, "Encoding", "One encoded sequence (or pair); all fields have the same length.")
      .def_ro("ids", &Encoding::ids)
      .def_ro("type_ids", &Encoding::type_ids)
      .def_ro("attention_mask", &Encoding::attention_mask)
      .def_ro("special_tokens_mask", &Encoding::special_tokens_mask)
      .def_ro("tokens", &Encoding::tokens)
      .def_ro("offsets", &Encoding::offsets, "byte offsets [begin, end) into the input string")
      .def("__len__", &Encoding::size);

  nb::class_<Tokenizer>(m, "Tokenizer", "tokenizer.json-compatible tokenizer (kpt::Tokenizer).")
      .def_static("from_file", &Tokenizer::from_file, "path"_a)
      .def_static("from_json", &Tokenizer::from_json, "json_text"_a)
      .def("encode", &Tokenizer::encode, "text"_a, "add_special_tokens"_a = true,
           nb::call_guard<nb::gil_scoped_release>())
      .def("encode_pair", &Tokenizer::encode_pair, "first"_a, "second"_a, "add_special_tokens"_a = true,
           nb::call_guard<nb::gil_scoped_release>())
      .def("encode_batch", &Tokenizer::encode_batch, "texts"_a, "add_special_tokens"_a = true,
           nb::call_guard<nb::gil_scoped_release>())
      .def(
          "decode",
          [](const Tokenizer& t, const std::vector<int64_t>& ids, bool skip_special_tokens) {
            return t.decode(ids, skip_special_tokens);
          },
          "ids"_a, "skip_special_tokens"_a = true)
      .def("token_to_id", &Tokenizer::token_to_id, "token"_a)
      .def("id_to_token", &Tokenizer::id_to_token, "id"_a)
      .def("vocab_size", &Tokenizer::vocab_size, "with_added_tokens"_a = true)
      .def(
          "set_truncation",
          [](Tokenizer& t, std::optional<size_t> max_length, const std::string& strategy,
             const std::string& direction) {
            if (!max_length) return t.set_truncation(std::nullopt);
            TruncationOptions o;
            o.max_length = *max_length;
            o.strategy = parse_strategy(strategy);
            o.direction = parse_direction(direction);
            t.set_truncation(o);
          },
          "max_length"_a, "strategy"_a = "longest_first", "direction"_a = "right",
          "max_length=None turns truncation off.")
      .def(
          "set_padding",
          [](Tokenizer& t, bool enabled, std::optional<size_t> length, size_t pad_to_multiple_of,
             const std::string& direction, int64_t pad_id, int64_t pad_type_id, const std::string& pad_token) {
            if (!enabled) return t.set_padding(std::nullopt);
            PaddingOptions o;
            o.fixed_length = length;
            o.pad_to_multiple_of = pad_to_multiple_of;
            o.direction = parse_direction(direction);
            o.pad_id = pad_id;
            o.pad_type_id = pad_type_id;
            o.pad_token = pad_token;
            t.set_padding(o);
          },
          "enabled"_a = true, "length"_a = nb::none(), "pad_to_multiple_of"_a = 0, "direction"_a = "right",
          "pad_id"_a = 0, "pad_type_id"_a = 0, "pad_token"_a = "[PAD]",
          "enabled=False turns padding off; length=None pads a batch to its longest row.")
      .def_prop_ro("truncation",
                   [](const Tokenizer& t) -> nb::object {
                     if (!t.truncation()) return nb::none();
                     nb::dict d;
                     d["max_length"] = t.truncation()->max_length;
                     d["strategy"] = strategy_name(t.truncation()->strategy);
                     d["direction"] = direction_name(t.truncation()->direction);
                     return d;
                   })
      .def_prop_ro("padding", [](const Tokenizer& t) -> nb::object {
        if (!t.padding()) return nb::none();
        const PaddingOptions& p = *t.padding();
        nb::dict d;
        d["length"] = p.fixed_length ? nb::cast(*p.fixed_length) : nb::none();
        d["pad_to_multiple_of"] = p.pad_to_multiple_of;
        d["direction"] = direction_name(p.direction);
        d["pad_id"] = p.pad_id;
        d["pad_type_id"] = p.pad_type_id;
        d["pad_token"] = p.pad_token;
        return d;
      });
}

}  // namespace kpt::python
