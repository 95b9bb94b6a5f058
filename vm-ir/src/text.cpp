#include "vm/ir/text.hpp"

namespace vm::ir {
std::string print(const IRBlock&) { return {}; }
std::string print_op(const Op&) { return {}; }
std::string print_terminator(const Terminator&) { return {}; }
core::Result<IRBlock> parse(std::string_view) { return core::fail(core::ErrorCode::Unsupported, "IR parser not written yet"); }
core::Result<std::vector<IRBlock>> parse_blocks(std::string_view) { return core::fail(core::ErrorCode::Unsupported, "IR parser not written yet"); }
}  // namespace vm::ir
