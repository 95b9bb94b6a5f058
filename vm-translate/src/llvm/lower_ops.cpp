// The Lowerer's per-op dispatch over a vm-ir block. See lowerer.hpp.
#include "lowerer.hpp"

namespace vm::translate::detail {

void Lowerer::find_access_groups(const ir::IRBlock& blk) {
  groups_.clear();
  op_group_.assign(blk.ops.size(), -1);
  op_offset_.assign(blk.ops.size(), 0);
  if (opts_.memory != MemoryStrategy::SoftMmu) return;
  // Each i64 value as (root value, constant offset) through add/sub of constants.
  std::vector<std::pair<ir::ValueId, int64_t>> base(blk.value_count(), {ir::kNoValue, 0});
  std::vector<std::optional<int64_t>> konst(blk.value_count());
  std::vector<Type> vtype(blk.value_count(), Type::Void);
  std::unordered_map<uint64_t, size_t> open;  // root -> group of the current stretch
  for (size_t i = 0; i < blk.ops.size(); ++i) {
    const ir::Op& op = blk.ops[i];
    if (op.opcode == Opcode::CallHelper) open.clear();
    if (op.result != ir::kNoValue) vtype[op.result] = op.type;
    if (op.result != ir::kNoValue && op.type == Type::I64) {
      base[op.result] = {op.result, 0};
      if (op.opcode == Opcode::Const) konst[op.result] = static_cast<int64_t>(op.imm);
      if ((op.opcode == Opcode::Add || op.opcode == Opcode::Sub) && op.nargs == 2 && op.lane == Lane::None) {
        ir::ValueId a = op.args[0], c = op.args[1];
        if (op.opcode == Opcode::Add && konst[a] && !konst[c]) std::swap(a, c);
        // Small offsets only (no signed overflow in the sums below).
        auto small = [](int64_t v) { return v > -(int64_t{1} << 32) && v < (int64_t{1} << 32); };
        if (konst[c] && base[a].first != ir::kNoValue && small(*konst[c]) && small(base[a].second)) {
          int64_t d = op.opcode == Opcode::Add ? *konst[c] : -*konst[c];
          base[op.result] = {base[a].first, base[a].second + d};
        }
      }
    }
    bool load = op.opcode == Opcode::Load, store = op.opcode == Opcode::Store;
    if (!load && !store) continue;
    auto [root, off] = base[op.args[0]];
    if (root == ir::kNoValue) continue;
    int64_t bytes = load ? (static_cast<ir::Ext>(op.mod) == ir::Ext::None ? ir::type_bytes(op.type) : op.aux / 8)
                         : ir::type_bytes(vtype[op.args[1]]);
    uint64_t key = root;  // loads and stores share a group (checked against both comparators)
    auto it = open.find(key);
    if (it != open.end()) {
      AccessGroup& g = groups_[it->second];
      int64_t lo = std::min(g.lo, off), hi = std::max(g.hi, off + bytes);
      if (hi - lo <= kMaxGroupSpan) {
        g.lo = lo;
        g.hi = hi;
        g.read |= load;
        g.write |= store;
        ++g.members;
        op_group_[i] = static_cast<int32_t>(it->second);
        op_offset_[i] = off;
        continue;
      }
    }
    open[key] = groups_.size();
    groups_.push_back(AccessGroup{root, off, off + bytes, load, store, 1});
    op_group_[i] = static_cast<int32_t>(groups_.size() - 1);
    op_offset_[i] = off;
  }
  for (size_t i = 0; i < op_group_.size(); ++i)  // a group of one is an ordinary access
    if (op_group_[i] >= 0 && groups_[op_group_[i]].members < 2) op_group_[i] = -1;
}

core::Result<void> Lowerer::lower_block_body(const ir::IRBlock& blk) {
  vals_.assign(blk.value_count(), nullptr);
  types_.assign(blk.value_count(), Type::Void);
  insn_pc_ = blk.start_pc;
  find_access_groups(blk);
  store_syncs_ = syncing() ? stores_needing_sync(blk, entry_reads_).at : std::vector<bool>(blk.ops.size(), false);
  for (size_t i = 0; i < blk.ops.size(); ++i) {
    const ir::Op& op = blk.ops[i];
    cur_op_ = i;
    cur_group_ = op_group_[i] >= 0 ? &groups_[op_group_[i]] : nullptr;
    cur_offset_ = op_offset_[i];
    Value* out = nullptr;
    if (auto r = lower_op(op, out); !r) return r;
    if (op.result != ir::kNoValue) {
      if (!out) return core::failf(ErrorCode::Internal, "op {} produced no value", ir::opcode_info(op.opcode).name);
      vals_[op.result] = out;
      types_[op.result] = op.type;
    }
  }
  cur_group_ = nullptr;
  consume_loads(true);
  lower_terminator(blk.term);
  return {};
}

core::Result<void> Lowerer::lower_op(const ir::Op& op, Value*& out) {
  const auto& info = ir::opcode_info(op.opcode);
  const bool lanes = op.lane != Lane::None;
  auto rounding = [&] { return static_cast<Rounding>(op.mod); };
  switch (op.opcode) {
    case Opcode::Const: out = constant(op); return {};
    case Opcode::GetReg: out = read_reg(op); return {};
    case Opcode::SetReg: write_reg(op, arg(op, 0), arg_type(op, 0)); return {};
    case Opcode::InsnStart:
      if (sync_pending_ && (insn_reads_[cur_block_][cur_op_] || span_read_))
        emit_sync(c64(op.imm), true, flags_reset_[cur_block_][cur_op_]);
      span_read_ = span_read_ || insn_reads_[cur_block_][cur_op_];
      insn_pc_ = core::GuestAddr(op.imm);
      return {};
    case Opcode::Load: {
      auto ext = static_cast<ir::Ext>(op.mod);
      if (ext == ir::Ext::None) {
        out = emit_load(arg(op, 0), ty(op.type), ir::type_bytes(op.type));
      } else {
        Value* raw = emit_load(arg(op, 0), b_.getIntNTy(op.aux), op.aux / 8);
        out = ext == ir::Ext::Sign ? b_.CreateSExt(raw, ty(op.type)) : b_.CreateZExt(raw, ty(op.type));
      }
      return {};
    }
    case Opcode::Store:
      emit_store(arg(op, 0), arg(op, 1), ir::type_bytes(arg_type(op, 1)));
      if (store_syncs_[cur_op_]) sync_pending_ = true;
      return {};
    case Opcode::Fill:
      out = emit_fill(arg(op, 0), arg(op, 1), arg(op, 2));
      if (store_syncs_[cur_op_]) sync_pending_ = true;
      return {};
    case Opcode::Copy:
      out = emit_copy(arg(op, 0), arg(op, 1), arg(op, 2), op.aux / 8);
      if (store_syncs_[cur_op_]) sync_pending_ = true;
      return {};
    case Opcode::AtomicCmpxchg:
    case Opcode::AtomicRmw:
      out = emit_atomic(op, arg(op, 0));
      sync_pending_ = syncing();
      return {};
    case Opcode::Fence: b_.CreateFence(llvm::AtomicOrdering::SequentiallyConsistent); return {};
    case Opcode::TrapIf:
      side_exit(arg(op, 0), encode_exit(TermKind::Trap, static_cast<ir::TrapReason>(op.aux)), "trap_if");
      return {};
    case Opcode::ExitIf: {
      // An early leave to a static pc (e.g. rep with a zero count, which
      // memset and memcpy of short lengths take every time): a direct exit
      // like a jump's, so it chains (or stays inside a region).
      auto* exit_bb = llvm::BasicBlock::Create(ctx_, "exit_if", fn_);
      auto* cont = llvm::BasicBlock::Create(ctx_, "cont", fn_);
      b_.CreateCondBr(arg(op, 0), exit_bb, cont);
      b_.SetInsertPoint(exit_bb);
      consume_loads(false);
      direct_exit(core::GuestAddr(op.imm), encode_exit(TermKind::Jump));
      b_.SetInsertPoint(cont);
      return {};
    }
    case Opcode::CallHelper: {
      flush_and_forget();
      restore_nearest_for_exit();
      cur_mode_ = c32(kNearest);
      Value* table = b_.CreateLoad(ptr_, mem_field(kMemCtxHelpers), "helpers");
      auto* have_table = llvm::BasicBlock::Create(ctx_, "helper_table", fn_);
      auto* do_call = llvm::BasicBlock::Create(ctx_, "helper_call", fn_);
      auto* join = llvm::BasicBlock::Create(ctx_, "helper_join", fn_);
      auto* start = b_.GetInsertBlock();
      b_.CreateCondBr(b_.CreateIsNull(table), join, have_table);
      b_.SetInsertPoint(have_table);
      Value* fnp = b_.CreateLoad(ptr_, b_.CreateConstInBoundsGEP1_64(ptr_, table, op.aux));
      b_.CreateCondBr(b_.CreateIsNull(fnp), join, do_call);
      b_.SetInsertPoint(do_call);
      std::array<Value*, 4> args = {state_, c64(0), c64(0), c64(0)};
      for (int i = 0; i < op.nargs; ++i) args[i + 1] = arg(op, i);
      auto* hty = llvm::FunctionType::get(i64_, {ptr_, i64_, i64_, i64_}, false);
      Value* r = b_.CreateCall(hty, fnp, args);
      refresh_tlb_slots();
      b_.CreateBr(join);
      b_.SetInsertPoint(join);
      auto* phi = b_.CreatePHI(i64_, 3);
      phi->addIncoming(c64(0), start);
      phi->addIncoming(c64(0), have_table);
      phi->addIncoming(r, do_call);
      if (region_) reload_slots();
      sync_pending_ = syncing();
      if (op.type != Type::Void) out = phi;
      return {};
    }
    case Opcode::DivU: case Opcode::DivS: case Opcode::RemU: case Opcode::RemS: {
      Value* a = arg(op, 0);
      Value* d = arg(op, 1);
      llvm::Type* t = a->getType();
      bool sgn = op.opcode == Opcode::DivS || op.opcode == Opcode::RemS;
      Value* bad = b_.CreateICmpEQ(d, llvm::Constant::getNullValue(t));
      if (sgn) {
        uint32_t bits = t->getIntegerBitWidth();
        Value* ovf = b_.CreateAnd(b_.CreateICmpEQ(a, llvm::ConstantInt::get(ctx_, llvm::APInt::getSignedMinValue(bits))),
                                  b_.CreateICmpEQ(d, llvm::Constant::getAllOnesValue(t)));
        bad = b_.CreateOr(bad, ovf);
      }
      side_exit(bad, encode_exit(TermKind::Trap, ir::TrapReason::DivideError), "div_trap");
      out = t->getIntegerBitWidth() == 128 ? wide_divide(op.opcode, a, d) : divide(op.opcode, a, d);
      return {};
    }
    case Opcode::Add: case Opcode::Sub: case Opcode::Mul: case Opcode::MulHiU: case Opcode::MulHiS:
    case Opcode::And: case Opcode::Or: case Opcode::Xor: case Opcode::Shl: case Opcode::LShr:
    case Opcode::AShr: case Opcode::Rotl: case Opcode::Rotr: case Opcode::SMin: case Opcode::SMax:
    case Opcode::UMin: case Opcode::UMax: case Opcode::AddSatS: case Opcode::AddSatU: case Opcode::SubSatS:
    case Opcode::SubSatU: case Opcode::AvgU: {
      if (lanes) {
        out = to_v128(int_binary(op.opcode, as_int_lanes(arg(op, 0), op.lane), as_int_lanes(arg(op, 1), op.lane)));
      } else {
        out = int_binary(op.opcode, arg(op, 0), arg(op, 1));
      }
      return {};
    }
    case Opcode::Not: case Opcode::Neg: case Opcode::Abs: case Opcode::Ctz: case Opcode::Clz:
    case Opcode::Popcount: case Opcode::Bswap:
      out = lanes ? to_v128(int_unary(op.opcode, as_int_lanes(arg(op, 0), op.lane))) : int_unary(op.opcode, arg(op, 0));
      return {};
    case Opcode::Parity: out = parity(arg(op, 0)); return {};
    case Opcode::Cmp:
    case Opcode::FCmp: {
      // Scalar: an i1. Lane-wise: each lane all ones or all zeros.
      auto compare = [&](Value* a, Value* bv) {
        return op.opcode == Opcode::FCmp ? float_compare(static_cast<ir::FCmpPred>(op.mod), a, bv)
                                         : int_compare(static_cast<ir::CmpPred>(op.mod), a, bv);
      };
      if (lanes) {
        Value* m = compare(as_lanes(arg(op, 0), op.lane), as_lanes(arg(op, 1), op.lane));
        out = to_v128(b_.CreateSExt(m, int_lane_vec(op.lane)));
      } else {
        out = compare(arg(op, 0), arg(op, 1));
      }
      return {};
    }
    case Opcode::Select: out = select(arg(op, 0), arg(op, 1), arg(op, 2)); return {};
    case Opcode::ZExt: out = b_.CreateZExt(arg(op, 0), ty(op.type)); return {};
    case Opcode::SExt: out = b_.CreateSExt(arg(op, 0), ty(op.type)); return {};
    case Opcode::Trunc: out = b_.CreateTrunc(arg(op, 0), ty(op.type)); return {};
    case Opcode::Bitcast: out = b_.CreateBitCast(arg(op, 0), ty(op.type)); return {};
    case Opcode::AddCarry: case Opcode::AddOverflow: case Opcode::SubBorrow: case Opcode::SubOverflow:
      out = carry_op(op.opcode, arg(op, 0), arg(op, 1), arg(op, 2));
      return {};
    case Opcode::FAdd: case Opcode::FSub: case Opcode::FMul: case Opcode::FDiv: case Opcode::FMin:
    case Opcode::FMax: {
      Rounding rm = info.mod == ir::ModKind::Round ? rounding() : Rounding::Rne;
      if (lanes) {
        out = to_v128(float_binary(op.opcode, rm, as_lanes(arg(op, 0), op.lane), as_lanes(arg(op, 1), op.lane)));
      } else {
        out = float_binary(op.opcode, rm, arg(op, 0), arg(op, 1));
      }
      return {};
    }
    case Opcode::FSqrt: {
      Value* a = lanes ? as_lanes(arg(op, 0), op.lane) : arg(op, 0);
      ensure_rounding(rounding());
      Value* r = nan_fixup1(a, fp_call(llvm::Intrinsic::sqrt, llvm::Intrinsic::experimental_constrained_sqrt, a));
      out = lanes ? to_v128(r) : r;
      return {};
    }
    case Opcode::FCvt: out = fcvt(arg(op, 0), rounding(), op.type); return {};
    case Opcode::FRound: {
      Value* a = arg(op, 0);
      Value* r = round_integral(a, rounding());
      Value* ai = to_bits(a);
      out = b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ai), quiet_bits(ai), to_bits(r)), a->getType());
      return {};
    }
    case Opcode::SIToFP:
      if (lanes) {
        out = to_v128(int_to_float(as_int_lanes(arg(op, 0), Lane::I32), rounding(), lane_vec(Lane::F32)));
      } else {
        out = int_to_float(arg(op, 0), rounding(), ty(op.type));
      }
      return {};
    case Opcode::FPToSI:
      if (lanes) {
        out = to_v128(float_to_int(as_lanes(arg(op, 0), Lane::F32), rounding(), 32));
      } else {
        out = float_to_int(arg(op, 0), rounding(), ir::type_bits(op.type));
      }
      return {};
    case Opcode::VExtract: out = b_.CreateExtractElement(as_lanes(arg(op, 0), op.lane), op.aux); return {};
    case Opcode::VInsert:
      out = to_v128(b_.CreateInsertElement(as_lanes(arg(op, 0), op.lane), arg(op, 1), op.aux));
      return {};
    case Opcode::VSplat: out = to_v128(b_.CreateVectorSplat(ir::lane_count(op.lane), arg(op, 0))); return {};
    case Opcode::VShuffle: out = shuffle(op, arg(op, 0), arg(op, 1)); return {};
    case Opcode::VPshufb: out = pshufb(arg(op, 0), arg(op, 1)); return {};
    case Opcode::VPackSS: case Opcode::VPackUS: out = pack(op, arg(op, 0), arg(op, 1)); return {};
    case Opcode::VMovmsk: out = movmsk(op, arg(op, 0)); return {};
    case Opcode::VMulAdd: out = muladd(arg(op, 0), arg(op, 1)); return {};
    case Opcode::VSad: out = sad(arg(op, 0), arg(op, 1)); return {};
  }
  return core::failf(ErrorCode::Unsupported, "cannot lower op {}", info.name);
}

void Lowerer::lower_terminator(const ir::Terminator& t) {
  switch (t.kind) {
    case TermKind::Jump: direct_exit(t.target, encode_exit(TermKind::Jump)); return;
    case TermKind::Branch: {
      auto* taken = llvm::BasicBlock::Create(ctx_, "taken", fn_);
      auto* not_taken = llvm::BasicBlock::Create(ctx_, "not_taken", fn_);
      b_.CreateCondBr(vals_[t.value], taken, not_taken);
      Value* saved_mode = cur_mode_;
      b_.SetInsertPoint(taken);
      direct_exit(t.target, encode_exit(TermKind::Branch));
      cur_mode_ = saved_mode;
      b_.SetInsertPoint(not_taken);
      direct_exit(t.fallthrough, encode_exit(TermKind::Branch));
      return;
    }
    case TermKind::IndirectJump:
    case TermKind::Ret: indirect_exit(vals_[t.value], encode_exit(t.kind), t.kind == TermKind::Ret); return;
    case TermKind::Call:
      if (t.value != ir::kNoValue) return indirect_exit(vals_[t.value], encode_exit(TermKind::Call), false);
      return direct_exit(t.target, encode_exit(TermKind::Call));
    case TermKind::Syscall:
    case TermKind::Exit: emit_return(c64(t.target.value()), encode_exit(t.kind)); return;
    case TermKind::Trap: emit_return(c64(t.target.value()), encode_exit(TermKind::Trap, t.trap, t.vector)); return;
    case TermKind::None: b_.CreateUnreachable(); return;
  }
}

}  // namespace vm::translate::detail
