// Block-local IR passes. Each works on the SSA form directly: uses are
// rewritten through a value-to-value map, and ops are removed by filtering,
// so a pass never leaves an op whose operands are undefined.
#include "vm/ir/passes.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include "vm/ir/interpreter.hpp"

namespace vm::ir {
namespace {

bool is_pure(const Op& op) {
  const OpcodeInfo& info = opcode_info(op.opcode);
  return !info.side_effect && !info.may_trap && op.opcode != Opcode::GetReg;
}

uint16_t byte_mask(uint32_t offset, uint32_t bytes) {
  uint32_t m = bytes >= 16 ? 0xffffu : ((1u << bytes) - 1);
  return static_cast<uint16_t>(m << offset);
}

uint32_t reg_access_bytes(Type t) { return t == Type::I1 ? 1 : type_bytes(t); }

}  // namespace

uint32_t fold_constants(IRBlock& block) {
  uint32_t folded = 0;
  uint32_t n = block.value_count();
  std::vector<uint8_t> is_const(n, 0);
  std::vector<Val> const_val(n);
  std::vector<Type> types(n, Type::Void);
  for (Op& op : block.ops) {
    if (op.result != kNoValue) types[op.result] = op.type;
    if (op.opcode == Opcode::Const) {
      is_const[op.result] = 1;
      const_val[op.result] = Val{op.imm, op.imm_hi};
      continue;
    }
    const OpcodeInfo& info = opcode_info(op.opcode);
    if (op.result == kNoValue || info.side_effect || op.opcode == Opcode::GetReg || op.opcode == Opcode::Load) continue;
    bool all_const = op.nargs > 0;
    Val args[3];
    Type arg_types[3] = {Type::Void, Type::Void, Type::Void};
    for (int a = 0; a < op.nargs; ++a) {
      ValueId v = op.args[a];
      if (!is_const[v]) {
        all_const = false;
        break;
      }
      args[a] = const_val[v];
      arg_types[a] = types[v];
    }
    if (!all_const) continue;
    // Dyn rounding depends on run-time MXCSR and division may trap: evaluate_pure declines those.
    auto r = evaluate_pure(op, std::span<const Val>(args, op.nargs), std::span<const Type>(arg_types, op.nargs));
    if (!r) continue;
    ValueId id = op.result;
    Type t = op.type;
    op = Op{};
    op.opcode = Opcode::Const;
    op.type = t;
    op.result = id;
    op.imm = r->lo;
    op.imm_hi = type_bits(t) > 64 ? r->hi : 0;
    if (type_bits(t) < 64) op.imm &= (uint64_t(1) << type_bits(t)) - 1;
    is_const[id] = 1;
    const_val[id] = Val{op.imm, op.imm_hi};
    ++folded;
  }
  // A branch on a constant is a jump.
  if (block.term.kind == TermKind::Branch && block.term.value < n && is_const[block.term.value]) {
    bool taken = const_val[block.term.value].lo & 1;
    GuestAddr target = taken ? block.term.target : block.term.fallthrough;
    block.term = Terminator{};
    block.term.kind = TermKind::Jump;
    block.term.target = target;
    ++folded;
  }
  return folded;
}

uint32_t propagate_copies(IRBlock& block) {
  struct Known {
    uint32_t offset;
    Type type;
    ValueId value;
  };
  std::array<std::vector<Known>, core::kNumX86Regs> known;
  std::vector<ValueId> map(block.value_count(), kNoValue);
  std::vector<Type> types(block.value_count(), Type::Void);
  for (const Op& op : block.ops)
    if (op.result != kNoValue) types[op.result] = op.type;
  uint32_t forwarded = 0;
  auto overlaps = [](const Known& k, uint32_t off, uint32_t bytes) {
    return k.offset < off + bytes && off < k.offset + reg_access_bytes(k.type);
  };
  for (Op& op : block.ops) {
    for (int a = 0; a < op.nargs; ++a)
      if (map[op.args[a]] != kNoValue) op.args[a] = map[op.args[a]];
    if (op.opcode == Opcode::GetReg) {
      auto& list = known[op.aux];
      auto it = std::find_if(list.begin(), list.end(),
                             [&](const Known& k) { return k.offset == op.imm && k.type == op.type; });
      if (it != list.end()) {
        map[op.result] = it->value;
        ++forwarded;
      } else {
        list.push_back(Known{static_cast<uint32_t>(op.imm), op.type, op.result});
      }
    } else if (op.opcode == Opcode::SetReg) {
      auto& list = known[op.aux];
      Type t = types[op.args[0]];
      uint32_t bytes = reg_access_bytes(t);
      std::erase_if(list, [&](const Known& k) { return overlaps(k, static_cast<uint32_t>(op.imm), bytes); });
      list.push_back(Known{static_cast<uint32_t>(op.imm), t, op.args[0]});
    } else if (op.opcode == Opcode::CallHelper) {
      for (auto& list : known) list.clear();  // helpers may change any register
    }
  }
  if (block.term.value != kNoValue && map[block.term.value] != kNoValue) block.term.value = map[block.term.value];
  return forwarded;
}

uint32_t eliminate_dead_code(IRBlock& block) {
  std::vector<uint8_t> used(block.value_count(), 0);
  if (block.term.value != kNoValue) used[block.term.value] = 1;
  std::vector<uint8_t> keep(block.ops.size(), 1);
  uint32_t removed = 0;
  for (size_t i = block.ops.size(); i-- > 0;) {
    const Op& op = block.ops[i];
    bool removable = op.result != kNoValue && !used[op.result] && (is_pure(op) || op.opcode == Opcode::GetReg);
    if (removable) {
      keep[i] = 0;
      ++removed;
      continue;
    }
    for (int a = 0; a < op.nargs; ++a) used[op.args[a]] = 1;
  }
  if (removed == 0) return 0;
  std::vector<Op> out;
  out.reserve(block.ops.size() - removed);
  for (size_t i = 0; i < block.ops.size(); ++i)
    if (keep[i]) out.push_back(block.ops[i]);
  block.ops = std::move(out);
  return removed;
}

void eliminate_dead_reg_writes(IRBlock& block, const PassOptions& options, PassStats& stats) {
  // live[r]: bytes of register r whose current value may still be observed.
  std::array<uint16_t, core::kNumX86Regs> live;
  live.fill(0xffff);  // every register is observable when the block ends
  std::vector<Type> types(block.value_count(), Type::Void);
  for (const Op& op : block.ops)
    if (op.result != kNoValue) types[op.result] = op.type;
  std::vector<uint8_t> keep(block.ops.size(), 1);
  bool removed_any = false;
  for (size_t i = block.ops.size(); i-- > 0;) {
    const Op& op = block.ops[i];
    const OpcodeInfo& info = opcode_info(op.opcode);
    if (op.opcode == Opcode::GetReg) {
      live[op.aux] |= byte_mask(static_cast<uint32_t>(op.imm), reg_access_bytes(op.type));
    } else if (op.opcode == Opcode::SetReg) {
      uint16_t m = byte_mask(static_cast<uint32_t>(op.imm), reg_access_bytes(types[op.args[0]]));
      if ((live[op.aux] & m) == 0) {
        keep[i] = 0;
        removed_any = true;
        ++stats.dead_reg_writes;
        if (core::kX86Regs[op.aux].kind == core::RegKind::Flag) ++stats.dead_flag_writes;
      } else {
        live[op.aux] &= static_cast<uint16_t>(~m);
      }
    } else if (op.opcode == Opcode::CallHelper || op.opcode == Opcode::ExitIf ||
               (options.precise_faults && info.may_trap)) {
      // exit_if leaves the block like a terminator: all state is observable.
      live.fill(0xffff);  // the state is observable here
    }
  }
  if (!removed_any) return;
  std::vector<Op> out;
  for (size_t i = 0; i < block.ops.size(); ++i)
    if (keep[i]) out.push_back(block.ops[i]);
  block.ops = std::move(out);
}

uint32_t fuse_flag_conditions(IRBlock& block) {
  uint32_t n = block.value_count();
  std::vector<int64_t> def(n, -1);  // value -> index of the op that defines it
  for (size_t i = 0; i < block.ops.size(); ++i)
    if (block.ops[i].result != kNoValue) def[block.ops[i].result] = static_cast<int64_t>(i);
  auto op_of = [&](ValueId v) -> const Op* { return v < n && def[v] >= 0 ? &block.ops[def[v]] : nullptr; };
  auto is_const = [&](ValueId v, uint64_t value) {
    const Op* d = op_of(v);
    return d && d->opcode == Opcode::Const && d->imm == value && d->imm_hi == 0;
  };
  // r = sub a, b: {a, b}.
  auto sub_operands = [&](ValueId r) -> std::optional<std::pair<ValueId, ValueId>> {
    const Op* d = op_of(r);
    if (!d || d->opcode != Opcode::Sub) return std::nullopt;
    return std::pair{d->args[0], d->args[1]};
  };
  // v = cmp pred (sub a, b), 0: {a, b}.
  auto flag_of_sub = [&](ValueId v, CmpPred pred) -> std::optional<std::pair<ValueId, ValueId>> {
    const Op* d = op_of(v);
    if (!d || d->opcode != Opcode::Cmp || static_cast<CmpPred>(d->mod) != pred || !is_const(d->args[1], 0))
      return std::nullopt;
    return sub_operands(d->args[0]);
  };
  // v = opcode a, b, 0 (sub_overflow / sub_borrow without a borrow in): {a, b}.
  auto borrowless = [&](ValueId v, Opcode opcode) -> std::optional<std::pair<ValueId, ValueId>> {
    const Op* d = op_of(v);
    if (!d || d->opcode != opcode || !is_const(d->args[2], 0)) return std::nullopt;
    return std::pair{d->args[0], d->args[1]};
  };
  // v = cmp pred a, b: {a, b}.
  auto compare = [&](ValueId v, CmpPred pred) -> std::optional<std::pair<ValueId, ValueId>> {
    const Op* d = op_of(v);
    if (!d || d->opcode != Opcode::Cmp || static_cast<CmpPred>(d->mod) != pred) return std::nullopt;
    return std::pair{d->args[0], d->args[1]};
  };
  auto rewrite = [](Op& op, CmpPred pred, std::pair<ValueId, ValueId> ab) {
    op.opcode = Opcode::Cmp;
    op.mod = static_cast<uint8_t>(pred);
    op.nargs = 2;
    op.args = {ab.first, ab.second, kNoValue};
    op.imm = op.imm_hi = op.aux = 0;
  };
  uint32_t fused = 0;
  for (Op& op : block.ops) {
    if (op.type != Type::I1 || op.nargs != 2) continue;
    ValueId x = op.args[0], y = op.args[1];
    if (op.opcode == Opcode::Xor) {
      // SF xor OF of r = a - b: a <s b.
      for (int swap = 0; swap < 2; ++swap, std::swap(x, y)) {
        auto s = flag_of_sub(x, CmpPred::Slt);
        auto o = borrowless(y, Opcode::SubOverflow);
        if (s && o && *s == *o) {
          rewrite(op, CmpPred::Slt, *s);
          ++fused;
          break;
        }
      }
    } else if (op.opcode == Opcode::Or) {
      for (int swap = 0; swap < 2; ++swap, std::swap(x, y)) {
        auto z = flag_of_sub(x, CmpPred::Eq);
        if (!z) continue;
        // ZF or a <s b: a <=s b.
        if (auto lt = compare(y, CmpPred::Slt); lt && *lt == *z) {
          rewrite(op, CmpPred::Sle, *z);
          ++fused;
          break;
        }
        // ZF or CF: a <=u b.
        auto c = borrowless(y, Opcode::SubBorrow);
        if (!c) c = compare(y, CmpPred::Ult);
        if (c && *c == *z) {
          rewrite(op, CmpPred::Ule, *z);
          ++fused;
          break;
        }
      }
    }
  }
  return fused;
}

PassStats run_standard_passes(IRBlock& block, const PassOptions& options) {
  PassStats stats;
  for (int round = 0; round < 4; ++round) {
    uint32_t before = stats.folded + stats.forwarded + stats.dead_ops + stats.dead_reg_writes + stats.fused_conditions;
    stats.folded += fold_constants(block);
    stats.forwarded += propagate_copies(block);
    stats.fused_conditions += fuse_flag_conditions(block);
    eliminate_dead_reg_writes(block, options, stats);
    stats.dead_ops += eliminate_dead_code(block);
    if (stats.folded + stats.forwarded + stats.dead_ops + stats.dead_reg_writes + stats.fused_conditions == before)
      break;
  }
  return stats;
}

}  // namespace vm::ir
