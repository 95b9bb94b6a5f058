// The JSON form of a guest machine state used by `vm exec` for input and
// output (docs/cli.md has the schema): registers by name as hex strings,
// flags as 0/1, xmm registers as 32 hex digits (most significant first),
// memory regions as address + permissions + hex bytes, and on output an
// `exit` object saying how the run ended.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/core/x86_state.hpp"
#include "vm/translate/x86.hpp"

namespace vm::translate {

struct MachineState {
  core::X86State regs;
  core::RegionMemory memory;
};

// Unspecified registers keep their X86State defaults (zero, mxcsr 0x1f80).
// Errors: malformed JSON, unknown register/flag/key names, bad hex, bad
// permissions, overlapping regions (all as Parse or AlreadyExists errors).
core::Result<MachineState> parse_state_json(std::string_view text);

struct JsonOutputOptions {
  bool include_memory = true;
};
std::string state_to_json(const MachineState& state, const RunResult* exit, const JsonOutputOptions& options = {});

}  // namespace vm::translate
