// The textual form of vm-ir. print() and parse() round-trip exactly:
// print(parse(print(b))) == print(b) and parse(print(b)) == b.
// Tests write blocks in this form; `vm lift` prints it. docs/ir.md has the
// grammar. Parse errors read "line:column: message" and never crash.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/ir/ir.hpp"

namespace vm::ir {

std::string print(const IRBlock& block);
std::string print_op(const Op& op);
std::string print_terminator(const Terminator& term);

// Parses exactly one block. The result is not verified; call verify().
core::Result<IRBlock> parse(std::string_view text);
// Parses any number of blocks (a file of blocks, e.g. a region).
core::Result<std::vector<IRBlock>> parse_blocks(std::string_view text);

}  // namespace vm::ir
