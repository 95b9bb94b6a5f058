// Where restartable direct access needs sync points (docs/jit.md,
// "Restartable state"): decided on the vm-ir of one block, so that the
// lowering and its region dataflow place them alike.
#include "sync_points.hpp"

#include <algorithm>
#include <iterator>

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
      case Opcode::Copy:
        if (have_marker) reads[marker] = true;
        break;
      default: break;
    }
  }
  return reads;
}

bool SpanReads::merge(const SpanReads& other) {
  if (any || !other.read()) return false;
  if (other.any) {
    any = true;
    locs.clear();
    return true;
  }
  const size_t before = locs.size();
  std::vector<Loc> all;
  all.reserve(locs.size() + other.locs.size());
  std::set_union(locs.begin(), locs.end(), other.locs.begin(), other.locs.end(), std::back_inserter(all));
  if (all.size() > kMaxLocs) {
    any = true;
    locs.clear();
    return true;
  }
  locs = std::move(all);
  return locs.size() != before;
}

StoreSyncs stores_needing_sync(const ir::IRBlock& blk, const SpanReads& entry) {
  // An address as base + offset: the base is a vm-ir value, or (reg >= 0)
  // that general register's value at the block's entry.
  struct Access {
    ir::ValueId base;
    int32_t reg;
    int64_t offset;
    uint32_t size;
  };
  constexpr uint32_t kGprs = 16;  // X86Reg rax..r15
  auto whole_gpr = [](uint32_t reg) { return reg < kGprs && core::kX86Regs[reg].kind == core::RegKind::I64; };
  std::vector<int32_t> def(blk.value_count(), -1);
  // Per value: the register whose entry value a get_reg read (no set_reg of
  // it and no helper call, which may write any register, before it).
  std::vector<int32_t> entry_reg(blk.value_count(), -1);
  {
    std::vector<bool> written(kGprs, false);
    for (size_t i = 0; i < blk.ops.size(); ++i) {
      const ir::Op& o = blk.ops[i];
      if (o.result != ir::kNoValue) def[o.result] = static_cast<int32_t>(i);
      if (o.opcode == Opcode::GetReg && whole_gpr(o.aux) && o.type == Type::I64 && o.imm == 0 &&
          !written[o.aux] && o.result != ir::kNoValue)
        entry_reg[o.result] = static_cast<int32_t>(o.aux);
      if (o.opcode == Opcode::SetReg && o.aux < kGprs) written[o.aux] = true;
      if (o.opcode == Opcode::CallHelper) written.assign(kGprs, true);
    }
  }
  auto const_of = [&](ir::ValueId v) -> const ir::Op* {
    if (v == ir::kNoValue || def[v] < 0) return nullptr;
    const ir::Op& o = blk.ops[def[v]];
    return o.opcode == Opcode::Const && o.type == Type::I64 ? &o : nullptr;
  };
  // base + constant offset, through chains of adds and subtracts of constants.
  auto access = [&](ir::ValueId addr, uint32_t size) {
    Access a{addr, -1, 0, size};
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
    if (a.base != ir::kNoValue && entry_reg[a.base] >= 0) {
      a.reg = entry_reg[a.base];
      a.base = ir::kNoValue;
    }
    a.offset = static_cast<int64_t>(offset);
    return a;
  };
  auto same_base = [](const Access& x, const Access& y) {
    return x.reg == y.reg && (x.reg >= 0 || x.base == y.base);
  };
  // Disjoint: the same base, small offsets (so that masking the address
  // into the guest region cannot bring them together), no byte in common.
  constexpr int64_t kNear = int64_t{1} << 20;
  auto near = [](int64_t off) { return off > -kNear && off < kNear; };
  auto may_alias = [&](const Access& x, const Access& y) {
    if (!same_base(x, y) || !near(x.offset) || !near(y.offset)) return true;
    return x.offset < y.offset + static_cast<int64_t>(y.size) && y.offset < x.offset + static_cast<int64_t>(x.size);
  };
  std::vector<bool> reads = insns_reading_memory(blk);
  StoreSyncs out;
  out.at.assign(blk.ops.size(), false);
  std::vector<Access> loads;
  constexpr size_t kMaxLoads = 64;
  bool unknown = entry.any, pending = false, span_read = entry.read();
  for (const SpanReads::Loc& l : entry.locs) loads.push_back(Access{ir::kNoValue, static_cast<int32_t>(l.reg), l.offset, l.size});
  // Each general register's current value as an access base: its entry
  // value, a value set_reg gave it, or unknown (-2: a partial write, or a
  // helper call).
  struct RegValue {
    int32_t entry;  // >= 0: the entry value of this register; -2: unknown
    ir::ValueId value;
  };
  std::vector<RegValue> cur(kGprs);
  for (uint32_t r = 0; r < kGprs; ++r) cur[r] = RegValue{static_cast<int32_t>(r), ir::kNoValue};
  // The open span's loads, relative to the registers' current values
  // (the stack pointer first, as stack slots are the common case).
  auto edge_reads = [&] {
    SpanReads e;
    if (unknown) {
      e.any = true;
      return e;
    }
    std::vector<std::pair<uint32_t, Access>> bases;
    auto add_base = [&](uint32_t r) {
      if (!whole_gpr(r) || cur[r].entry == -2) return;
      Access b = cur[r].entry >= 0 ? Access{ir::kNoValue, cur[r].entry, 0, 0} : access(cur[r].value, 0);
      bases.emplace_back(r, b);
    };
    add_base(static_cast<uint32_t>(core::X86Reg::Rsp));
    for (uint32_t r = 0; r < kGprs; ++r)
      if (r != static_cast<uint32_t>(core::X86Reg::Rsp)) add_base(r);
    for (const Access& l : loads) {
      bool found = false;
      for (const auto& [r, b] : bases) {
        if (!same_base(l, b)) continue;
        const int64_t off = static_cast<int64_t>(static_cast<uint64_t>(l.offset) - static_cast<uint64_t>(b.offset));
        if (!near(l.offset) || !near(b.offset) || !near(off)) continue;
        e.locs.push_back(SpanReads::Loc{r, off, l.size});
        found = true;
        break;
      }
      if (!found) {
        e.any = true;
        e.locs.clear();
        return e;
      }
    }
    std::sort(e.locs.begin(), e.locs.end());
    e.locs.erase(std::unique(e.locs.begin(), e.locs.end()), e.locs.end());
    if (e.locs.size() > SpanReads::kMaxLocs) {
      e.any = true;
      e.locs.clear();
    }
    return e;
  };
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
      case Opcode::SetReg:
        if (op.aux < kGprs) {
          const ir::ValueId v = op.args[0];
          const bool whole = whole_gpr(op.aux) && op.imm == 0 && v != ir::kNoValue && def[v] >= 0 &&
                             blk.ops[def[v]].type == Type::I64;
          cur[op.aux] = whole ? RegValue{-1, v} : RegValue{-2, ir::kNoValue};
        }
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
          out.at[k] = pending = true;
        break;
      }
      case Opcode::Fill:  // up to a page from its address: may overwrite any load of the span
        if (unknown || !loads.empty()) out.at[k] = pending = true;
        break;
      case Opcode::Copy:  // reads and writes up to a page each, its own reads included
        out.at[k] = pending = unknown = true;
        break;
      case Opcode::CallHelper:
        for (auto& c : cur) c = RegValue{-2, ir::kNoValue};
        pending = unknown = true;
        break;
      case Opcode::AtomicRmw: case Opcode::AtomicCmpxchg:
        pending = unknown = true;
        break;
      case Opcode::ExitIf:
        out.edges.emplace_back(k, edge_reads());
        break;
      default: break;
    }
  }
  out.edges.emplace_back(blk.ops.size(), edge_reads());
  return out;
}

std::vector<uint64_t> flags_set_before_observed(const ir::IRBlock& blk) {
  static_assert(core::kNumX86Regs <= 64, "register masks are 64 bits");
  auto flag_bit = [](uint32_t reg) -> uint64_t {
    return reg < core::kNumX86Regs && core::kX86Regs[reg].kind == core::RegKind::Flag ? uint64_t{1} << reg : 0;
  };
  auto observer = [](const ir::Op& op) {
    if (op.opcode == Opcode::InsnStart || op.opcode == Opcode::SetReg) return false;
    const ir::OpcodeInfo& info = ir::opcode_info(op.opcode);
    return info.may_trap || info.side_effect;
  };
  const size_t n = blk.ops.size();
  // Backwards: the flags set again before an observer or a read of the flag.
  std::vector<uint64_t> out(n, 0);
  uint64_t set = 0;
  for (size_t k = n; k-- > 0;) {
    const ir::Op& op = blk.ops[k];
    if (op.opcode == Opcode::SetReg) set |= flag_bit(op.aux);
    else if (op.opcode == Opcode::GetReg) set &= ~flag_bit(op.aux);
    else if (observer(op)) set = 0;
    out[k] = set;
  }
  // The vm-ir passes forward a flag's value from the op that set it to the
  // ops that read it, so a read may be a use of a value computed before the
  // marker rather than a get_reg after it. Per value, the flags it was read
  // from or written to, and everything computed from those values.
  std::vector<int32_t> def(blk.value_count(), -1);
  std::vector<uint64_t> from_flags(blk.value_count(), 0);
  for (size_t i = 0; i < n; ++i) {
    const ir::Op& op = blk.ops[i];
    if (op.result != ir::kNoValue) def[op.result] = static_cast<int32_t>(i);
    if (op.opcode == Opcode::GetReg && op.result != ir::kNoValue) from_flags[op.result] |= flag_bit(op.aux);
    if (op.opcode == Opcode::SetReg && op.args[0] != ir::kNoValue) from_flags[op.args[0]] |= flag_bit(op.aux);
  }
  for (size_t i = 0; i < n; ++i) {
    const ir::Op& op = blk.ops[i];
    if (op.result == ir::kNoValue) continue;
    for (int a = 0; a < op.nargs && a < 3; ++a)
      if (op.args[a] != ir::kNoValue) from_flags[op.result] |= from_flags[op.args[a]];
  }
  // A marker k keeps reading a flag if, up to the next observer (where
  // out[] became 0), an op uses a value from before k that came from it. A
  // use at op j of a value defined at d therefore reads for the markers
  // strictly between max(d, the last observer before j) and j; the
  // terminator's use counts as one at n when no observer follows. Per flag,
  // a difference array over those intervals (a scan from every marker to
  // the next observer was quadratic in a block without observers: 85% of a
  // 1,000-instruction block's lowering).
  std::vector<uint32_t> flag_regs;
  for (uint32_t r = 0; r < core::kNumX86Regs; ++r)
    if (flag_bit(r)) flag_regs.push_back(r);
  std::vector<int32_t> diff(flag_regs.size() * (n + 2), 0);
  auto mark = [&](ir::ValueId v, size_t j, int64_t last_observer) {
    if (v == ir::kNoValue || def[v] < 0 || from_flags[v] == 0) return;
    int64_t lo = std::max<int64_t>(def[v], last_observer) + 1;  // first marker that reads
    if (lo >= static_cast<int64_t>(j)) return;
    for (size_t f = 0; f < flag_regs.size(); ++f)
      if (from_flags[v] & (uint64_t{1} << flag_regs[f])) {
        ++diff[f * (n + 2) + static_cast<size_t>(lo)];
        --diff[f * (n + 2) + j];
      }
  };
  int64_t last_observer = -1;
  for (size_t j = 0; j < n; ++j) {
    const ir::Op& op = blk.ops[j];
    if (observer(op)) {
      last_observer = static_cast<int64_t>(j);
      continue;
    }
    for (int a = 0; a < op.nargs && a < 3; ++a) mark(op.args[a], j, last_observer);
  }
  mark(blk.term.value, n, last_observer);
  for (size_t f = 0; f < flag_regs.size(); ++f) {
    int32_t live = 0;
    for (size_t k = 0; k < n; ++k) {
      live += diff[f * (n + 2) + k];
      if (live > 0 && blk.ops[k].opcode == Opcode::InsnStart) out[k] &= ~(uint64_t{1} << flag_regs[f]);
    }
  }
  return out;
}

}  // namespace vm::translate::detail
