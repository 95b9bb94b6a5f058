// Error and Result<T>: how every layer reports a problem that is not a bug
// of ours. Guest-caused problems (bad bytes, faults, malformed ELF or IR
// text) are values of this type; asserts are reserved for our invariants.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "vm/core/guest_addr.hpp"

namespace vm::core {

enum class ErrorCode {
  InvalidArgument,   // a caller passed something meaningless (bad flag, size, alignment)
  Parse,             // malformed text (IR, JSON, hex)
  Verify,            // an IR block broke a verifier rule
  Decode,            // undecodable guest bytes
  Unsupported,       // a valid request we do not implement
  GuestFault,        // guest memory access that the guest may not make
  OutOfMemory,       // host allocation or guest address space exhausted
  NotFound,          // lookup of something that does not exist
  AlreadyExists,     // overlapping mapping, duplicate definition
  Io,                // host file/OS error
  Internal,          // a failed invariant reported instead of crashing
};

constexpr std::string_view error_code_name(ErrorCode c) {
  switch (c) {
    case ErrorCode::InvalidArgument: return "invalid argument";
    case ErrorCode::Parse: return "parse error";
    case ErrorCode::Verify: return "verify error";
    case ErrorCode::Decode: return "decode error";
    case ErrorCode::Unsupported: return "unsupported";
    case ErrorCode::GuestFault: return "guest fault";
    case ErrorCode::OutOfMemory: return "out of memory";
    case ErrorCode::NotFound: return "not found";
    case ErrorCode::AlreadyExists: return "already exists";
    case ErrorCode::Io: return "I/O error";
    case ErrorCode::Internal: return "internal error";
  }
  return "error";
}

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  std::optional<GuestAddr> addr;  // the guest address the error is about, if any

  // "guest fault at 0x1000: write to read-only page"
  [[nodiscard]] std::string to_string() const {
    if (addr) return fmt::format("{} at {:#x}: {}", error_code_name(code), *addr, message);
    return fmt::format("{}: {}", error_code_name(code), message);
  }
};

template <class T>
using Result = std::expected<T, Error>;

// Shorthand for `return fail(ErrorCode::Parse, "...")` in functions returning Result<T>.
inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::optional<GuestAddr> addr = std::nullopt) {
  return std::unexpected<Error>(Error{code, std::move(message), addr});
}

template <class... Args>
std::unexpected<Error> failf(ErrorCode code, fmt::format_string<Args...> f, Args&&... args) {
  return fail(code, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace vm::core

template <>
struct fmt::formatter<vm::core::Error> : fmt::formatter<std::string_view> {
  auto format(const vm::core::Error& e, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(e.to_string(), ctx);
  }
};
