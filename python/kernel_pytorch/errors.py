"""Exceptions raised by the engine, one class per kpt::ErrorCode, message unchanged.

Every class derives from KptError and from the builtin a Python caller expects:

    kInvalidArgument -> InvalidArgumentError(ValueError)
    kOutOfRange      -> OutOfRangeError(ValueError)
    kInvalidFile     -> InvalidFileError(ValueError)
    kNotFound        -> NotFoundError(FileNotFoundError, ValueError)
    kUnsupported     -> UnsupportedError(NotImplementedError)   (a RuntimeError)
    kOutOfMemory     -> OutOfMemoryError(RuntimeError)
    kIo              -> IoError(RuntimeError)
    kInternal        -> InternalError(RuntimeError)
"""
from ._core import (InternalError, InvalidArgumentError, InvalidFileError, IoError, KptError, NotFoundError,
                    OutOfMemoryError, OutOfRangeError, UnsupportedError)

__all__ = ["KptError", "InvalidArgumentError", "NotFoundError", "InvalidFileError", "UnsupportedError",
           "OutOfRangeError", "OutOfMemoryError", "IoError", "InternalError"]
