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
  return tlb_lookup_span(addr, c64(size - 1), comparator_off, also_read);
}

std::pair<Value*, Value*> Lowerer::tlb_lookup_span(Value* addr, Value* last_off, size_t comparator_off, bool also_read) {
  Value* index_mask = b_.CreateLoad(i64_, tlb_slots_[0]);
  Value* table = b_.CreateLoad(ptr_, tlb_slots_[1]);
  Value* tag = b_.CreateLoad(i64_, tlb_slots_[2]);
  Value* idx = b_.CreateAnd(b_.CreateLShr(addr, core::kTlbIndexShift), index_mask);
  Value* entry = b_.CreateGEP(i8_, table, idx);
  Value* last = b_.CreateAdd(addr, last_off);
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
  refresh_tlb_slots();
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

Value* Lowerer::emit_fill(Value* addr, Value* v, Value* count) {
  const uint32_t size = v->getType()->getIntegerBitWidth() / 8;
  const uint32_t shift = static_cast<uint32_t>(std::countr_zero(size));
  // ir::fill_elements: min(count, max(1, elements up to the page end)).
  Value* n = b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, count, page_room(addr, size), nullptr, "fill_n");
  auto* body = llvm::BasicBlock::Create(ctx_, "fill", fn_);
  auto* done = llvm::BasicBlock::Create(ctx_, "fill_done", fn_);
  b_.CreateCondBr(b_.CreateICmpEQ(n, c64(0)), done, body, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
  b_.SetInsertPoint(body);
  Value* bytes = b_.CreateShl(n, shift);
  if (opts_.memory == MemoryStrategy::Direct) {
    fill_host(direct_addr(addr), v, bytes);
  } else {
    auto [hit, host] = tlb_lookup_span(addr, b_.CreateSub(bytes, c64(1)), core::kTlbEntryWriteOffset, false);
    TlbPaths paths = branch_on_hit(hit, "fill");
    fill_host(host, v, bytes);
    paths.enter_slow(b_);
    // Element by element, each through its own check and slow path, so a
    // fault (only the first element can meet one) or a watched page is
    // handled as for a store.
    each_element(n, size, "fill_each", [&](Value* off) { emit_store(b_.CreateAdd(addr, off), v, size); });
    paths.join_values(b_, nullptr, nullptr);
  }
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
  return n;
}

void Lowerer::each_element(Value* n, uint32_t size, const char* name, const std::function<void(Value* off)>& body) {
  const uint32_t shift = static_cast<uint32_t>(std::countr_zero(size));
  auto* loop = llvm::BasicBlock::Create(ctx_, name, fn_);
  auto* pre = b_.GetInsertBlock();
  b_.CreateBr(loop);
  b_.SetInsertPoint(loop);
  auto* i = b_.CreatePHI(i64_, 2);
  i->addIncoming(c64(0), pre);
  body(b_.CreateShl(i, shift));
  Value* next = b_.CreateAdd(i, c64(1));
  i->addIncoming(next, b_.GetInsertBlock());
  auto* after = llvm::BasicBlock::Create(ctx_, std::string(name) + "_done", fn_);
  b_.CreateCondBr(b_.CreateICmpULT(next, n), loop, after);
  b_.SetInsertPoint(after);
}

Value* Lowerer::page_room(Value* addr, uint32_t size) {
  const uint32_t shift = static_cast<uint32_t>(std::countr_zero(size));
  Value* room = b_.CreateLShr(b_.CreateSub(c64(ir::kFillPageBytes), b_.CreateAnd(addr, c64(ir::kFillPageBytes - 1))), shift);
  return b_.CreateBinaryIntrinsic(llvm::Intrinsic::umax, room, c64(1));
}

Value* Lowerer::emit_copy(Value* dst, Value* src, Value* count, uint32_t size) {
  const uint32_t shift = static_cast<uint32_t>(std::countr_zero(size));
  Value* room = b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, page_room(dst, size), page_room(src, size));
  Value* n = b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, count, room, nullptr, "copy_n");
  auto* body = llvm::BasicBlock::Create(ctx_, "copy", fn_);
  auto* done = llvm::BasicBlock::Create(ctx_, "copy_done", fn_);
  b_.CreateCondBr(b_.CreateICmpEQ(n, c64(0)), done, body, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
  b_.SetInsertPoint(body);
  Value* bytes = b_.CreateShl(n, shift);
  if (opts_.memory == MemoryStrategy::Direct) {
    Value* hs = direct_addr(src);
    copy_host(direct_addr(dst), hs, bytes, size);
  } else {
    Value* last = b_.CreateSub(bytes, c64(1));
    auto [hit_src, hs] = tlb_lookup_span(src, last, core::kTlbEntryReadOffset, false);
    auto [hit_dst, hd] = tlb_lookup_span(dst, last, core::kTlbEntryWriteOffset, false);
    TlbPaths paths = branch_on_hit(b_.CreateAnd(hit_src, hit_dst), "copy");
    copy_host(hd, hs, bytes, size);
    paths.enter_slow(b_);
    // Element by element through the ordinary paths: faults, watched and
    // read-only pages as for single loads and stores.
    each_element(n, size, "copy_each", [&](Value* off) {
      Value* v = emit_load(b_.CreateAdd(src, off), b_.getIntNTy(size * 8), size);
      emit_store(b_.CreateAdd(dst, off), v, size);
    });
    paths.join_values(b_, nullptr, nullptr);
  }
  b_.CreateBr(done);
  b_.SetInsertPoint(done);
  return n;
}

void Lowerer::copy_host(Value* hd, Value* hs, Value* bytes, uint32_t size) {
  const uint32_t shift = static_cast<uint32_t>(std::countr_zero(size));
  llvm::Type* et = b_.getIntNTy(size * 8);
  Value* gap = b_.CreateSub(b_.CreatePtrToInt(hd, i64_), b_.CreatePtrToInt(hs, i64_));
  Value* near = b_.CreateICmpULT(b_.CreateSub(gap, c64(1)), c64(15));
  auto* each = llvm::BasicBlock::Create(ctx_, "copy_near", fn_);
  auto* wide = llvm::BasicBlock::Create(ctx_, "copy_wide", fn_);
  auto* join = llvm::BasicBlock::Create(ctx_, "copy_host_done", fn_);
  b_.CreateCondBr(near, each, wide, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());

  b_.SetInsertPoint(each);
  each_element(b_.CreateLShr(bytes, shift), size, "copy_near_each", [&](Value* off) {
    Value* ev = scoped(b_.CreateAlignedLoad(et, b_.CreateGEP(i8_, hs, off), llvm::Align(1)), true);
    scoped(b_.CreateAlignedStore(ev, b_.CreateGEP(i8_, hd, off), llvm::Align(1)), true);
  });
  b_.CreateBr(join);

  b_.SetInsertPoint(wide);
  in_pieces(bytes, size, 16, "copy", [&](Value* off, uint32_t w) {
    llvm::Type* t = w == 16 ? static_cast<llvm::Type*>(v128_) : b_.getIntNTy(w * 8);
    Value* piece = scoped(b_.CreateAlignedLoad(t, b_.CreateGEP(i8_, hs, off), llvm::Align(1)), true);
    scoped(b_.CreateAlignedStore(piece, b_.CreateGEP(i8_, hd, off), llvm::Align(1)), true);
  });
  b_.CreateBr(join);
  b_.SetInsertPoint(join);
}

void Lowerer::fill_host(Value* host, Value* v, Value* bytes) {
  const uint32_t size = v->getType()->getIntegerBitWidth() / 8;
  // The value repeated over 64 bits, then over 128.
  static constexpr uint64_t kRepeat[9] = {0, 0x0101010101010101ULL, 0x0001000100010001ULL, 0, 0x0000000100000001ULL,
                                          0, 0, 0, 1};
  Value* v64 = b_.CreateZExt(v, i64_);
  if (size < 8) v64 = b_.CreateMul(v64, c64(kRepeat[size]));
  // A fill reads nothing that its stores could overlap (unlike a copy), so
  // it goes a cache line (64 bytes) per step: `strings` (gcc's inline `rep
  // stosq` of a 1 KiB buffer) 16% faster than with 16-byte steps under
  // direct access, 11% under softmmu (docs/benchmarks.md). LLVM splits the
  // wide vector as the target needs.
  in_pieces(bytes, size, 64, "fill", [&](Value* off, uint32_t w) {
    Value* piece = w >= 16 ? b_.CreateVectorSplat(w / 8, v64) : w == 8 ? v64 : b_.CreateTrunc(v64, b_.getIntNTy(w * 8));
    scoped(b_.CreateAlignedStore(piece, b_.CreateGEP(i8_, host, off), llvm::Align(1)), true);
  });
}

void Lowerer::in_pieces(Value* bytes, uint32_t size, uint32_t widest, const char* name,
                        const std::function<void(Value* off, uint32_t width)>& piece) {
  const uint32_t shift = static_cast<uint32_t>(std::countr_zero(widest));
  auto* pre = b_.GetInsertBlock();
  auto* loop = llvm::BasicBlock::Create(ctx_, std::string(name) + std::to_string(widest), fn_);
  auto* tail = llvm::BasicBlock::Create(ctx_, std::string(name) + "_tail", fn_);
  Value* chunks = b_.CreateLShr(bytes, shift);
  b_.CreateCondBr(b_.CreateICmpEQ(chunks, c64(0)), tail, loop);
  b_.SetInsertPoint(loop);
  auto* j = b_.CreatePHI(i64_, 2, std::string(name) + "_j");
  j->addIncoming(c64(0), pre);
  piece(b_.CreateShl(j, shift), widest);
  Value* next = b_.CreateAdd(j, c64(1));
  j->addIncoming(next, b_.GetInsertBlock());
  b_.CreateCondBr(b_.CreateICmpULT(next, chunks), loop, tail);
  b_.SetInsertPoint(tail);
  // The last bytes % widest (a multiple of the element size): the halving
  // widths down to the element size as their bits of the length say. Each
  // piece starts at a multiple of its own width, so it holds whole elements.
  Value* off = b_.CreateAnd(bytes, c64(~uint64_t{widest - 1}));
  for (uint32_t w = widest / 2; w >= size; w /= 2) {
    auto* put = llvm::BasicBlock::Create(ctx_, std::string(name) + "_piece", fn_);
    auto* cont = llvm::BasicBlock::Create(ctx_, std::string(name) + "_piece_done", fn_);
    auto* from = b_.GetInsertBlock();
    b_.CreateCondBr(b_.CreateICmpNE(b_.CreateAnd(bytes, c64(w)), c64(0)), put, cont);
    b_.SetInsertPoint(put);
    piece(off, w);
    Value* moved = b_.CreateAdd(off, c64(w));
    auto* put_end = b_.GetInsertBlock();
    b_.CreateBr(cont);
    b_.SetInsertPoint(cont);
    auto* phi = b_.CreatePHI(i64_, 2);
    phi->addIncoming(off, from);
    phi->addIncoming(moved, put_end);
    off = phi;
    if (w == 1) break;
  }
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
  // x86 writes the destination even when the compare fails (or the result
  // equals the old value): under restartable state that write must stay, or
  // a read-only page would not fault (see emit_store).
  b_.CreateAlignedStore(restartable() ? opaque(neu) : neu, host, llvm::Align(1));
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
