// Internal access to an Engine's Session for the layers built on top of the runtime (the
// serving scheduler drives prefill chunks and decode steps itself). Not part of the public API.
#pragma once

#include "kpt/engine.h"
#include "runtime/session.h"

namespace kpt::runtime {

Session& engine_session(Engine& engine);

}  // namespace kpt::runtime
