// Shared declarations of the kernel_pytorch._core bindings (one file per bound area).
#pragma once

#include <nanobind/nanobind.h>

namespace kpt::python {

void bind_errors(nanobind::module_& m);
void bind_engine(nanobind::module_& m);
void bind_tokenizer(nanobind::module_& m);

}  // namespace kpt::python
