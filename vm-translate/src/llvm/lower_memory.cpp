// The Lowerer's guest memory accesses: direct (guest base + masked address),
// softmmu (inline TLB check, grouped accesses, out-of-line slow path) and
// atomics. See lowerer.hpp.
#include "lowerer.hpp"

namespace vm::translate::detail {

Value* Lowerer::direct_addr(Value* addr) {
  if (opts_.direct_guard > 16) {
    // addr = root + d through adds and subtracts of constants.
    const auto bound = static_cast<int64_t>(std::min<uint64_t>(opts_.direct_guard - 16, uint64_t{1} << 40));
    Value* root = addr;
    int64_t d = 0;
    for (int depth = 0; depth < 16; ++depth) {
      auto* bo = llvm::dyn_cast<llvm::BinaryOperator>(root);
      if (!bo || !bo->getType()->isIntegerTy(64)) break;
      bool add = bo->getOpcode() == llvm::Instruction::Add, sub = bo->getOpcode() == llvm::Instruction::Sub;
      auto* c1 = llvm::dyn_cast<llvm::ConstantInt>(bo->getOperand(1));
      auto* c0 = add ? llvm::dyn_cast<llvm::ConstantInt>(bo->getOperand(0)) : nullptr;
      if (!(add || sub) || !(c1 || c0)) break;
      int64_t k = (c1 ? c1 : c0)->getSExtValue();
      if (k <= -bound || k >= bound) break;
      int64_t next = sub ? d - k : d + k;
      if (next <= -bound || next >= bound) break;
      d = next;
      root = bo->getOperand(c1 ? 0 : 1);
    }
    if (root != addr)
      return b_.CreateGEP(i8_, b_.CreateGEP(i8_, guest_base_, b_.CreateAnd(root, region_mask_)), c64(d));
  }
  return b_.CreateGEP(i8_, guest_base_, b_.CreateAnd(addr, region_mask_));
}

std::pair<Value*, Value*> Lowerer::tlb_lookup(Value* addr, uint32_t size, size_t comparator_off, bool also_read) {
  Value* index_mask = tlb_load(i64_, tlb_, core::kTlbFastIndexMaskOffset);
  Value* table = tlb_load(ptr_, tlb_, core::kTlbFastTableOffset);
  Value* tag = tlb_load(i64_, tlb_, core::kTlbFastTagOffset);
  Value* idx = b_.CreateAnd(b_.CreateLShr(addr, core::kTlbIndexShift), index_mask);
  Value* entry = b_.CreateGEP(i8_, table, idx);
  Value* last = b_.CreateAdd(addr, c64(size - 1));
  Value* want = b_.CreateOr(b_.CreateAnd(last, c64(core::kTlbPageMask)), tag);
  Value* have = tlb_load(i64_, entry, comparator_off);
  Value* hit = b_.CreateICmpEQ(have, want, "tlb_hit");
  if (also_read) hit = b_.CreateAnd(hit, b_.CreateICmpEQ(tlb_load(i64_, entry, core::kTlbEntryReadOffset), want));
  Value* addend = tlb_load(i64_, entry, core::kTlbEntryAddendOffset);
  Value* host = b_.CreateIntToPtr(b_.CreateAdd(addr, addend), ptr_);
  return {hit, host};
}

Value* Lowerer::call_slow(size_t field, llvm::FunctionType* fty, llvm::ArrayRef<Value*> args) {
  Value* fnp = b_.CreateLoad(ptr_, mem_field(field));
  if (cur_mode_ != c32(kNearest)) b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {c32(kNearest)});
  Value* r = b_.CreateCall(fty, fnp, args);
  if (cur_mode_ != c32(kNearest)) b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {cur_mode_});
  return r;
}

void Lowerer::open_group(AccessGroup& g) {
  if (g.hit) return;
  Value* lo_addr = b_.CreateAdd(vals_[g.root], c64(static_cast<uint64_t>(g.lo)));
  auto [hit, host] = tlb_lookup(lo_addr, static_cast<uint32_t>(g.hi - g.lo),
                                g.write ? core::kTlbEntryWriteOffset : core::kTlbEntryReadOffset, g.read && g.write);
  g.hit = hit;
  g.host_lo = host;
}

Value* Lowerer::grouped_access(Value* addr, llvm::Type* t, Value* store_value, uint32_t bytes) {
  AccessGroup* g = cur_group_;
  open_group(*g);
  const bool load = store_value == nullptr;
  auto* grouped = llvm::BasicBlock::Create(ctx_, load ? "ld_grouped" : "st_grouped", fn_);
  auto* own = llvm::BasicBlock::Create(ctx_, load ? "ld_own" : "st_own", fn_);
  auto* done = llvm::BasicBlock::Create(ctx_, load ? "ld_done" : "st_done", fn_);
  b_.CreateCondBr(g->hit, grouped, own, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
  b_.SetInsertPoint(grouped);
  Value* gv = nullptr;
  if (load) gv = scoped(b_.CreateAlignedLoad(t, group_host(), llvm::Align(1)), true);
  else scoped(b_.CreateAlignedStore(store_value, group_host(), llvm::Align(1)), true);
  b_.CreateBr(done);
  b_.SetInsertPoint(own);
  cur_group_ = nullptr;
  Value* ov = nullptr;
  if (load) ov = emit_load(addr, t, bytes);
  else emit_store(addr, store_value, bytes);
  cur_group_ = g;
  auto* own_end = b_.GetInsertBlock();
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
  if (!load) return nullptr;
  auto* phi = b_.CreatePHI(t, 2);
  phi->addIncoming(gv, grouped);
  phi->addIncoming(ov, own_end);
  return phi;
}

Value* Lowerer::emit_load(Value* addr, llvm::Type* t, uint32_t bytes) {
  if (opts_.memory == MemoryStrategy::Direct) {
    Value* v = b_.CreateAlignedLoad(t, direct_addr(addr), llvm::Align(1));
    if (restartable()) sink_load(v);
    return v;
  }
  if (cur_group_) return grouped_access(addr, t, nullptr, bytes);
  auto [hit, host] = tlb_lookup(addr, bytes, core::kTlbEntryReadOffset);
  TlbPaths paths = branch_on_hit(hit, "ld");
  Value* fv = scoped(b_.CreateAlignedLoad(t, host, llvm::Align(1)), true);
  paths.enter_slow(b_);
  auto* fty = llvm::FunctionType::get(i32_, {ptr_, i64_, i64_, ptr_}, false);
  Value* st = call_slow(kMemCtxLoadSlow, fty, {mem_, addr, c64(bytes), slow_buf_});
  fault_exit(st, "ld_fault");
  Value* sv = b_.CreateAlignedLoad(t, slow_buf_, llvm::Align(1));
  return paths.join_values(b_, fv, sv);
}

void Lowerer::emit_store(Value* addr, Value* v, uint32_t bytes) {
  if (opts_.memory == MemoryStrategy::Direct) {
    b_.CreateAlignedStore(restartable() ? opaque(v) : v, direct_addr(addr), llvm::Align(1));
    return;
  }
  if (cur_group_) {
    grouped_access(addr, v->getType(), v, bytes);
    return;
  }
  auto [hit, host] = tlb_lookup(addr, bytes, core::kTlbEntryWriteOffset);
  TlbPaths paths = branch_on_hit(hit, "st");
  scoped(b_.CreateAlignedStore(v, host, llvm::Align(1)), true);
  paths.enter_slow(b_);
  b_.CreateAlignedStore(v, slow_buf_, llvm::Align(1));
  auto* fty = llvm::FunctionType::get(i32_, {ptr_, i64_, i64_, ptr_}, false);
  Value* st = call_slow(kMemCtxStoreSlow, fty, {mem_, addr, c64(bytes), slow_buf_});
  fault_exit(st, "st_fault");
  paths.join_values(b_, nullptr, nullptr);
}

Value* Lowerer::emit_atomic(const ir::Op& op, Value* addr) {
  uint32_t bytes = ir::type_bytes(op.type);
  if (opts_.memory == MemoryStrategy::Direct) return atomic_on_host(op, direct_addr(addr));
  auto [hit, host] = tlb_lookup(addr, bytes, core::kTlbEntryWriteOffset);
  TlbPaths paths = branch_on_hit(hit, "at");
  Value* fv = atomic_on_host(op, host);
  paths.enter_slow(b_);
  b_.CreateAlignedStore(arg(op, 1), operand_buf_, llvm::Align(16));
  uint32_t kind = static_cast<uint32_t>(op.mod);
  if (op.opcode == Opcode::AtomicCmpxchg) {
    b_.CreateAlignedStore(arg(op, 2), b_.CreateConstInBoundsGEP1_64(i8_, operand_buf_, 16), llvm::Align(16));
    kind = kAtomicSlowCmpxchg;
  }
  auto* fty = llvm::FunctionType::get(i32_, {ptr_, i64_, i64_, i32_, ptr_, ptr_}, false);
  Value* st = call_slow(kMemCtxAtomicSlow, fty, {mem_, addr, c64(bytes), c32(kind), operand_buf_, slow_buf_});
  fault_exit(st, "at_fault");
  Value* sv = b_.CreateAlignedLoad(ty(op.type), slow_buf_, llvm::Align(1));
  return paths.join_values(b_, fv, sv);
}

Value* Lowerer::atomic_on_host(const ir::Op& op, Value* host) {
  uint32_t bytes = ir::type_bytes(op.type);
  llvm::Type* t = ty(op.type);
  Value* addr_bits = b_.CreatePtrToInt(host, i64_);
  Value* aligned = b_.CreateICmpEQ(b_.CreateAnd(addr_bits, c64(bytes - 1)), c64(0));
  auto* at_bb = llvm::BasicBlock::Create(ctx_, "atomic", fn_);
  auto* plain_bb = llvm::BasicBlock::Create(ctx_, "unaligned", fn_);
  auto* join = llvm::BasicBlock::Create(ctx_, "atomic_join", fn_);
  b_.CreateCondBr(aligned, at_bb, plain_bb, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
  Value* a1 = arg(op, 1);
  Value* a2 = op.opcode == Opcode::AtomicCmpxchg ? arg(op, 2) : nullptr;

  b_.SetInsertPoint(at_bb);
  Value* old_atomic = nullptr;
  if (op.opcode == Opcode::AtomicCmpxchg) {
    auto* cx = b_.CreateAtomicCmpXchg(host, a1, a2, llvm::MaybeAlign(bytes), llvm::AtomicOrdering::SequentiallyConsistent,
                                      llvm::AtomicOrdering::SequentiallyConsistent);
    old_atomic = b_.CreateExtractValue(cx, 0);
  } else {
    old_atomic = b_.CreateAtomicRMW(rmw_kind(static_cast<ir::RmwOp>(op.mod)), host, a1, llvm::MaybeAlign(bytes),
                                    llvm::AtomicOrdering::SequentiallyConsistent);
  }
  b_.CreateBr(join);

  b_.SetInsertPoint(plain_bb);
  Value* old_plain = b_.CreateAlignedLoad(t, host, llvm::Align(1));
  Value* neu = nullptr;
  if (op.opcode == Opcode::AtomicCmpxchg) {
    neu = b_.CreateSelect(b_.CreateICmpEQ(old_plain, a1), a2, old_plain);
  } else {
    switch (static_cast<ir::RmwOp>(op.mod)) {
      case ir::RmwOp::Xchg: neu = a1; break;
      case ir::RmwOp::Add: neu = b_.CreateAdd(old_plain, a1); break;
      case ir::RmwOp::Sub: neu = b_.CreateSub(old_plain, a1); break;
      case ir::RmwOp::And: neu = b_.CreateAnd(old_plain, a1); break;
      case ir::RmwOp::Or: neu = b_.CreateOr(old_plain, a1); break;
      case ir::RmwOp::Xor: neu = b_.CreateXor(old_plain, a1); break;
    }
  }
  b_.CreateAlignedStore(neu, host, llvm::Align(1));
  b_.CreateBr(join);

  b_.SetInsertPoint(join);
  auto* phi = b_.CreatePHI(t, 2);
  phi->addIncoming(old_atomic, at_bb);
  phi->addIncoming(old_plain, plain_bb);
  return phi;
}

llvm::AtomicRMWInst::BinOp Lowerer::rmw_kind(ir::RmwOp op) {
  switch (op) {
    case ir::RmwOp::Xchg: return llvm::AtomicRMWInst::Xchg;
    case ir::RmwOp::Add: return llvm::AtomicRMWInst::Add;
    case ir::RmwOp::Sub: return llvm::AtomicRMWInst::Sub;
    case ir::RmwOp::And: return llvm::AtomicRMWInst::And;
    case ir::RmwOp::Or: return llvm::AtomicRMWInst::Or;
    case ir::RmwOp::Xor: return llvm::AtomicRMWInst::Xor;
  }
  return llvm::AtomicRMWInst::Xchg;
}

}  // namespace vm::translate::detail
