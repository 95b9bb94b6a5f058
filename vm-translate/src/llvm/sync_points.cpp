// Where restartable direct access needs sync points (docs/jit.md,
// "Restartable state"): decided on the vm-ir of one block, so that the
// lowering and its region dataflow place them alike.
#include "sync_points.hpp"

#include <algorithm>

namespace vm::translate::detail {

using ir::Lane;
using ir::Opcode;
using ir::Type;

std::vector<bool> insns_reading_memory(const ir::IRBlock& blk) {
  std::vector<bool> reads(blk.ops.size(), false);
  size_t marker = 0;
  bool have_marker = false;
  for (size_t i = 0; i < blk.ops.size(); ++i) {
    switch (blk.ops[i].opcode) {
      case Opcode::InsnStart: marker = i; have_marker = true; break;
      case Opcode::Load: case Opcode::AtomicRmw: case Opcode::AtomicCmpxchg: case Opcode::CallHelper:
        if (have_marker) reads[marker] = true;
        break;
      default: break;
    }
  }
  return reads;
}

std::vector<bool> stores_needing_sync(const ir::IRBlock& blk, bool span_open) {
  struct Access {
    ir::ValueId base;
    int64_t offset;
    uint32_t size;
  };
  std::vector<int32_t> def(blk.value_count(), -1);
  for (size_t i = 0; i < blk.ops.size(); ++i)
    if (blk.ops[i].result != ir::kNoValue) def[blk.ops[i].result] = static_cast<int32_t>(i);
  auto const_of = [&](ir::ValueId v) -> const ir::Op* {
    if (v == ir::kNoValue || def[v] < 0) return nullptr;
    const ir::Op& o = blk.ops[def[v]];
    return o.opcode == Opcode::Const && o.type == Type::I64 ? &o : nullptr;
  };
  // base + constant offset, through chains of adds and subtracts of constants.
  auto access = [&](ir::ValueId addr, uint32_t size) {
    Access a{addr, 0, size};
    uint64_t offset = 0;  // modulo 2^64, like the address arithmetic
    for (int depth = 0; depth < 32 && a.base != ir::kNoValue && def[a.base] >= 0; ++depth) {
      const ir::Op& o = blk.ops[def[a.base]];
      if ((o.opcode != Opcode::Add && o.opcode != Opcode::Sub) || o.type != Type::I64 || o.lane != Lane::None) break;
      if (const ir::Op* c = const_of(o.args[1])) {
        offset += o.opcode == Opcode::Add ? c->imm : 0 - c->imm;
        a.base = o.args[0];
      } else if (const ir::Op* c0 = o.opcode == Opcode::Add ? const_of(o.args[0]) : nullptr) {
        offset += c0->imm;
        a.base = o.args[1];
      } else {
        break;
      }
    }
    a.offset = static_cast<int64_t>(offset);
    return a;
  };
  // Disjoint: the same base, small offsets (so that masking the address
  // into the guest region cannot bring them together), no byte in common.
  constexpr int64_t kNear = int64_t{1} << 20;
  auto may_alias = [&](const Access& x, const Access& y) {
    if (x.base != y.base || x.offset <= -kNear || x.offset >= kNear || y.offset <= -kNear || y.offset >= kNear)
      return true;
    return x.offset < y.offset + static_cast<int64_t>(y.size) && y.offset < x.offset + static_cast<int64_t>(x.size);
  };
  std::vector<bool> reads = insns_reading_memory(blk);
  std::vector<bool> out(blk.ops.size(), false);
  std::vector<Access> loads;
  bool unknown = span_open, pending = false, span_read = span_open;
  constexpr size_t kMaxLoads = 64;
  for (size_t k = 0; k < blk.ops.size(); ++k) {
    const ir::Op& op = blk.ops[k];
    switch (op.opcode) {
      case Opcode::InsnStart:
        if (pending && (reads[k] || span_read)) {
          pending = span_read = unknown = false;
          loads.clear();
        }
        span_read = span_read || reads[k];
        break;
      case Opcode::Load: {
        uint32_t size = static_cast<ir::Ext>(op.mod) == ir::Ext::None ? ir::type_bytes(op.type) : op.aux / 8;
        if (loads.size() < kMaxLoads) loads.push_back(access(op.args[0], size));
        else unknown = true;
        break;
      }
      case Opcode::Store: {
        ir::ValueId v = op.args[1];
        uint32_t size = v != ir::kNoValue && def[v] >= 0 ? ir::type_bytes(blk.ops[def[v]].type) : 16;
        Access st = access(op.args[0], size);
        if (unknown || std::any_of(loads.begin(), loads.end(), [&](const Access& l) { return may_alias(l, st); }))
          out[k] = pending = true;
        break;
      }
      case Opcode::AtomicRmw: case Opcode::AtomicCmpxchg: case Opcode::CallHelper:
        pending = unknown = true;
        break;
      default: break;
    }
  }
  return out;
}

}  // namespace vm::translate::detail
