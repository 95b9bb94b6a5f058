// In-process x86-64 assembler (LLVM MC): Intel-syntax text to machine code.
// Tests write guest instructions as text instead of hand-encoded bytes, and
// `vm lift/exec --asm` accepts text. Labels and relative branches inside
// the text work; references that would need a relocation are rejected.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "vm/core/error.hpp"

namespace vm::translate {

// Assembles `text` (Intel syntax, no register prefix; ';' or newlines
// separate instructions). Errors are Parse errors carrying LLVM's message.
core::Result<std::vector<uint8_t>> assemble_x86(std::string_view text);

}  // namespace vm::translate
