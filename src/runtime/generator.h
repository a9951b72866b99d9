// Prefill + decode over the paged KV cache for a batch of prompts.
#pragma once

#include <vector>

#include "kpt/engine.h"
#include "runtime/session.h"

namespace kpt::runtime {

GenerateResult generate(Session& session, const std::vector<std::vector<int64_t>>& prompts,
                        const GenerateOptions& options, const std::vector<int64_t>& default_eos);

}  // namespace kpt::runtime
