// INPUTS.json for `forward`: {"input_ids": [[...]], "attention_mask": [[...]], "token_type_ids": [[...]]}.
#pragma once

#include <string>

#include "kpt/engine.h"

namespace kpt::cli {

ForwardInputs read_inputs_json(const std::string& path);
ForwardInputs parse_inputs_json(const std::string& text, const std::string& source);

}  // namespace kpt::cli
