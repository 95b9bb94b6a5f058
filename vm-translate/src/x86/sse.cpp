// SSE / SSE2 / SSE3 / SSSE3 / SSE4.1: not lifted yet. Every SSE mnemonic
// is absent from the table and therefore lifts to Trap(unsupported).
#include "x86/lifter.hpp"

namespace vm::translate::x86 {

LiftStatus lift_sse_movsd(Lifter&) { return LiftStatus::Unsupported; }
LiftStatus lift_sse_cmpsd(Lifter&) { return LiftStatus::Unsupported; }

std::span<const LiftEntry> sse_entries() { return {}; }

}  // namespace vm::translate::x86
