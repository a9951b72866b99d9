// kernel_pytorch._core: the thin nanobind layer over the public C++ API (include/kpt/*.h).
// Policy lives in the Python package; this file only converts types, releases the GIL around
// compute and turns kpt::Error into Python exceptions with the same message.
#include <array>
#include <string>

#include <nanobind/nanobind.h>

#include "bindings.h"
#include "kpt/status.h"

namespace nb = nanobind;

namespace kpt::python {

namespace {

constexpr size_t kNumCodes = static_cast<size_t>(ErrorCode::kInternal) + 1;
// Python exception class per ErrorCode, indexed by the code; owned by the module.
std::array<PyObject*, kNumCodes> g_error_classes{};

// One class per code, all deriving from KptError so callers can catch every engine error at
// once, and from the builtin a Python programmer expects: bad input is a ValueError, a missing
// file a FileNotFoundError (and still a ValueError), the rest RuntimeError.
struct ErrorClassSpec {
  ErrorCode code;
  const char* name;
  std::array<PyObject*, 2> builtin_bases;  // nullptr-terminated
};

}  // namespace

void bind_errors(nb::module_& m) {
  nb::object base = nb::steal(PyErr_NewExceptionWithDoc(
      "kernel_pytorch._core.KptError",
      "Base class of every error raised by the KernelPyTorch engine; `code` names the kind.", PyExc_Exception,
      nullptr));
  m.attr("KptError") = base;
  const ErrorClassSpec specs[] = {
      {ErrorCode::kInvalidArgument, "InvalidArgumentError", {PyExc_ValueError, nullptr}},
      {ErrorCode::kNotFound, "NotFoundError", {PyExc_FileNotFoundError, PyExc_ValueError}},
      {ErrorCode::kInvalidFile, "InvalidFileError", {PyExc_ValueError, nullptr}},
      {ErrorCode::kUnsupported, "UnsupportedError", {PyExc_NotImplementedError, nullptr}},
      {ErrorCode::kOutOfRange, "OutOfRangeError", {PyExc_ValueError, nullptr}},
      {ErrorCode::kOutOfMemory, "OutOfMemoryError", {PyExc_RuntimeError, nullptr}},
      {ErrorCode::kIo, "IoError", {PyExc_RuntimeError, nullptr}},
      {ErrorCode::kInternal, "InternalError", {PyExc_RuntimeError, nullptr}},
  };
  for (const auto& spec : specs) {
    nb::list bases;
    bases.append(base);
    for (PyObject* b : spec.builtin_bases)
      if (b != nullptr) bases.append(nb::borrow(b));
    nb::dict attrs;
    attrs["code"] = nb::str(error_code_name(spec.code));
    std::string qualified = std::string("kernel_pytorch._core.") + spec.name;
    nb::object cls = nb::steal(PyErr_NewException(qualified.c_str(), nb::tuple(bases).ptr(), attrs.ptr()));
    if (!cls.is_valid()) throw nb::python_error();
    m.attr(spec.name) = cls;
    g_error_classes[static_cast<size_t>(spec.code)] = cls.ptr();  // kept alive by the module
  }

  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      PyObject* cls = g_error_classes[static_cast<size_t>(e.code())];
      PyErr_SetString(cls != nullptr ? cls : PyExc_RuntimeError, e.what());
    }
  });
}

}  // namespace kpt::python

NB_MODULE(_core, m) {
  m.doc() = "KernelPyTorch engine bindings (use the kernel_pytorch package, not this module directly)";
  kpt::python::bind_errors(m);
  kpt::python::bind_engine(m);
  kpt::python::bind_tokenizer(m);
}
