// Verifier: checks that an IRBlock is well formed before anyone interprets,
// optimises or lowers it: operand counts and types, defined-before-use SSA
// values, valid register/helper ids and sub-register ranges, lane indices,
// modifiers in range, and exactly one terminator. It never crashes on any
// block; the first problem is reported as "op N (name): reason".
#pragma once

#include "vm/core/error.hpp"
#include "vm/ir/ir.hpp"

namespace vm::ir {

core::Result<void> verify(const IRBlock& block);

}  // namespace vm::ir
