// vm-ir -> LLVM IR. One Lowerer builds one function for a block or a region.
//
// Guest registers are cached per register in SSA values of their storage
// type (i1 for flags, iN for integer registers, <2 x i64> for xmm) and written
// back only when control leaves: at exits (including the side exits of
// run-time traps, which store the registers dirty at that point, so faults are
// precise) and before helper calls, after which the cache is empty. In a
// region, values cross internal edges in per-register slots (allocas that
// SROA promotes), and every exit stores what the region writes. Float
// semantics follow the interpreter bit for bit: NaN results are fixed up in
// the integer domain to x86's rules (first NaN operand quieted, else the
// default NaN 0xffc00000 / 0xfff8...), so AArch64 and RISC-V hosts with other
// default NaNs give x86 answers, and rounding modifiers other than
// nearest-even switch the host rounding mode with llvm.set.rounding around
// constrained (strictfp) operations.
#include "lowerer.hpp"

namespace vm::translate {

std::string_view memory_strategy_name(MemoryStrategy s) {
  return s == MemoryStrategy::Direct ? "direct" : "softmmu";
}

namespace detail {

core::Result<LoweredFunction> Lowerer::run(std::span<const ir::IRBlock> blocks) {
  if (blocks.empty()) return core::fail(ErrorCode::InvalidArgument, "nothing to lower");
  for (const auto& blk : blocks) {
    if (auto v = ir::verify(blk); !v) return std::unexpected(v.error());
  }
  if (mod_.getFunction(opts_.function_name))
    return core::failf(ErrorCode::AlreadyExists, "function {} already exists", opts_.function_name);

  i8_ = b_.getInt8Ty();
  i32_ = b_.getInt32Ty();
  i64_ = b_.getInt64Ty();
  ptr_ = b_.getPtrTy();
  v128_ = llvm::FixedVectorType::get(i64_, 2);
  auto* fty = llvm::FunctionType::get(i64_, {ptr_, ptr_}, false);
  fn_ = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, opts_.function_name, mod_);
  fn_->addParamAttr(0, llvm::Attribute::NoAlias);
  fn_->addParamAttr(0, llvm::Attribute::NoCapture);
  fn_->addParamAttr(1, llvm::Attribute::NoCapture);
  fn_->addFnAttr(llvm::Attribute::NoUnwind);
  fn_->addFnAttr("frame-pointer", "none");
  if (opts_.preserve_none) fn_->setCallingConv(llvm::CallingConv::PreserveNone);
  // Entries are 16-byte aligned: run_unit and chained code read bit 0 of a
  // handed-over entry as its convention (kPreserveNoneTag).
  fn_->setAlignment(llvm::Align(16));
  state_ = fn_->getArg(0);
  mem_ = fn_->getArg(1);
  state_->setName("state");
  mem_->setName("mem");

  for (const auto& blk : blocks)
    for (const auto& op : blk.ops)
      if (ir::opcode_info(op.opcode).mod == ir::ModKind::Round && static_cast<Rounding>(op.mod) != Rounding::Rne)
        strict_ = true;
  if (strict_) {
    fn_->addFnAttr(llvm::Attribute::StrictFP);
    b_.setIsFPConstrained(true);
    b_.setDefaultConstrainedRounding(llvm::RoundingMode::Dynamic);
    b_.setDefaultConstrainedExcept(llvm::fp::ebIgnore);
  }

  // A region with a promotion counter starts with it, ahead of the entry
  // block's loads of the guest state, so that those stay next to their
  // uses behind the entry switch (with the count in the entry block, they
  // were hoisted above its branch and spilled). A single block counts in
  // its entry block, as it always did.
  auto* count = opts_.entry_counter != 0 && blocks.size() > 1 ? llvm::BasicBlock::Create(ctx_, "count", fn_) : nullptr;
  auto* entry = llvm::BasicBlock::Create(ctx_, "entry", fn_);
  b_.SetInsertPoint(entry);
  slow_buf_ = b_.CreateAlloca(llvm::ArrayType::get(i8_, 16), nullptr, "slowbuf");
  if (opts_.fast_isel && direct_restartable()) sink_slot_ = b_.CreateAlloca(i64_, nullptr, "load_sink");
  slow_buf_->setAlignment(llvm::Align(16));
  operand_buf_ = b_.CreateAlloca(llvm::ArrayType::get(i8_, 32), nullptr, "operands");
  operand_buf_->setAlignment(llvm::Align(16));
  if (opts_.memory == MemoryStrategy::Direct) {
    guest_base_ = opts_.guest_base_gs ? static_cast<Value*>(llvm::ConstantPointerNull::get(b_.getPtrTy(256)))
                                      : b_.CreateLoad(ptr_, mem_field(kMemCtxGuestBase), "guest_base");
    region_mask_ = opts_.direct_mask != 0 ? static_cast<Value*>(c64(opts_.direct_mask))
                                          : b_.CreateLoad(i64_, mem_field(kMemCtxRegionMask), "region_mask");
  } else {
    tlb_ = b_.CreateLoad(ptr_, mem_field(kMemCtxTlb), "tlb");
    llvm::MDBuilder mdb(ctx_);
    llvm::MDNode* domain = mdb.createAnonymousAliasScopeDomain("vm");
    guest_scope_ = llvm::MDNode::get(ctx_, {mdb.createAnonymousAliasScope(domain, "guest memory")});
    tlb_scope_ = llvm::MDNode::get(ctx_, {mdb.createAnonymousAliasScope(domain, "tlb")});
    tlb_slots_ = {b_.CreateAlloca(i64_, nullptr, "tlb_index_mask"), b_.CreateAlloca(ptr_, nullptr, "tlb_table"),
                  b_.CreateAlloca(i64_, nullptr, "tlb_tag")};
    refresh_tlb_slots();
  }
  if (blocks.size() > 1) init_region_slots(blocks);
  for (size_t i = 0; i < blocks.size(); ++i) {
    block_entries_.push_back(llvm::BasicBlock::Create(ctx_, fmt::format("block_{:x}", blocks[i].start_pc.value()), fn_));
    block_pcs_.push_back(blocks[i].start_pc.value());
    // A lone block's jump to its own start returns to the caller like any
    // exit ("runs once"); only a real region keeps its edges inside.
    if (blocks.size() > 1) region_index_.emplace(blocks[i].start_pc.value(), i);
  }
  for (const auto& blk : blocks) {
    insn_reads_.push_back(insns_reading_memory(blk));
    if (restartable()) flags_reset_.push_back(flags_set_before_observed(blk));
  }
  if (blocks.size() > 1) {
    for (const auto& blk : blocks)
      if (blk.term.kind == TermKind::Call)
        if (auto it = region_index_.find(blk.term.fallthrough.value()); it != region_index_.end())
          return_sites_.push_back(it->second);
    std::sort(return_sites_.begin(), return_sites_.end());
    return_sites_.erase(std::unique(return_sites_.begin(), return_sites_.end()), return_sites_.end());
    if (opts_.indirect_members) compute_dispatch_targets(blocks);
    if (syncing()) compute_entry_unsynced(blocks);
  }
  if (count != nullptr) {
    // A region's count: returning here leaves the state exactly as it was
    // on entry, rip included (the pc of the member it was entered at, with
    // all_entries). The entry block's allocas move up here, where static
    // allocas belong.
    llvm::IRBuilder<> cb(count);
    emit_entry_count(cb, entry, opts_.all_entries ? std::nullopt : std::optional(blocks[0].start_pc.value()));
    std::vector<llvm::AllocaInst*> allocas;
    for (auto& inst : *entry)
      if (auto* a = llvm::dyn_cast<llvm::AllocaInst>(&inst)) allocas.push_back(a);
    llvm::Instruction* first = &count->front();
    for (auto* a : allocas) a->moveBefore(first);
  }
  if (opts_.entry_counter != 0 && count == nullptr) {
    // A single block's count: nothing of the guest state is loaded yet, so
    // returning here leaves the state exactly as it was on entry.
    emit_entry_count(b_, block_entries_[0], blocks[0].start_pc.value());
  } else if (opts_.all_entries && blocks.size() > 1) {
    Value* rip = b_.CreateAlignedLoad(i64_, rip_ptr(), llvm::Align(8), "entry_rip");
    const auto& listed = opts_.entry_pcs;
    llvm::BasicBlock* other = block_entries_[0];
    if (!listed.empty()) {
      other = llvm::BasicBlock::Create(ctx_, "not_an_entry", fn_);
      llvm::IRBuilder<>(other).CreateRet(c64(encode_exit(TermKind::Jump)));
    }
    auto* sw = b_.CreateSwitch(rip, other, static_cast<unsigned>(blocks.size() - 1));
    for (size_t i = listed.empty() ? 1 : 0; i < blocks.size(); ++i)
      if (listed.empty() || std::binary_search(listed.begin(), listed.end(), blocks[i].start_pc.value()))
        sw->addCase(b_.getInt64(blocks[i].start_pc.value()), block_entries_[i]);
  } else {
    b_.CreateBr(block_entries_[0]);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    b_.SetInsertPoint(block_entries_[i]);
    cur_block_ = i;
    reset_block_state();
    unsynced_ = entry_unsynced_.empty() ? RegSet{} : entry_unsynced_[i];
    sync_pending_ = false;
    // An internal edge may continue a span that read.
    span_read_ = region_ && (entry_span_read_.empty() || entry_span_read_[i]);
    entry_reads_ = entry_span_reads_.empty() ? SpanReads{} : entry_span_reads_[i];
    if (auto r = lower_block_body(blocks[i]); !r) return std::unexpected(r.error());
  }

  std::string err;
  llvm::raw_string_ostream os(err);
  if (llvm::verifyFunction(*fn_, &os)) {
    fn_->eraseFromParent();
    return core::failf(ErrorCode::Internal, "lowering produced invalid LLVM IR: {}", os.str());
  }
  LoweredFunction out;
  out.function = fn_;
  out.chain_slots = std::move(chain_slots_);
  for (const auto& bb : *fn_) out.ir_instructions += static_cast<uint32_t>(bb.size());
  return out;
}

llvm::Type* Lowerer::ty(Type t) {
  switch (t) {
    case Type::Void: return b_.getVoidTy();
    case Type::I1: return b_.getInt1Ty();
    case Type::I8: return i8_;
    case Type::I16: return b_.getInt16Ty();
    case Type::I32: return i32_;
    case Type::I64: return i64_;
    case Type::I128: return b_.getInt128Ty();
    case Type::F32: return b_.getFloatTy();
    case Type::F64: return b_.getDoubleTy();
    case Type::V128: return v128_;
  }
  return nullptr;
}

llvm::Type* Lowerer::lane_elem(Lane l) {
  switch (l) {
    case Lane::F32: return b_.getFloatTy();
    case Lane::F64: return b_.getDoubleTy();
    default: return b_.getIntNTy(ir::lane_bits(l));
  }
}

llvm::Type* Lowerer::int_like(llvm::Type* t) {
  if (auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(t))
    return llvm::FixedVectorType::get(b_.getIntNTy(vt->getScalarSizeInBits()), vt->getNumElements());
  return b_.getIntNTy(t->getPrimitiveSizeInBits());
}

Value* Lowerer::splat_like(llvm::Type* t, uint64_t v) {
  auto* st = t->getScalarType();
  uint32_t bits = st->getIntegerBitWidth();
  llvm::Constant* c = llvm::ConstantInt::get(st, bits >= 64 ? v : v & ((uint64_t{1} << bits) - 1));
  if (auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(t)) return llvm::ConstantVector::getSplat(vt->getElementCount(), c);
  return c;
}

Value* Lowerer::mode_for(Rounding rm) {
  switch (rm) {
    case Rounding::Rne: return c32(1);
    case Rounding::Rdn: return c32(3);
    case Rounding::Rup: return c32(2);
    case Rounding::Rtz: return c32(0);
    case Rounding::Dyn: {
      Value* mx = get_full(core::X86Reg::Mxcsr);
      if (mx != mxcsr_for_mode_ || dyn_mode_ == nullptr) {
        // MXCSR.RC 0..3 (nearest, down, up, zero) -> FLT_ROUNDS 1, 3, 2, 0, packed two bits each.
        Value* rc = b_.CreateAnd(b_.CreateLShr(mx, 13), 3);
        dyn_mode_ = b_.CreateAnd(b_.CreateLShr(c32(0x2d), b_.CreateShl(rc, 1)), 3, "dyn_mode");
        mxcsr_for_mode_ = mx;
      }
      return dyn_mode_;
    }
  }
  return c32(kNearest);
}

void Lowerer::install_mode(Value* mode) {
  if (mode != cur_mode_) {
    b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {mode});
    cur_mode_ = mode;
  }
  if (strict_) b_.setDefaultConstrainedRounding(constrained_rounding(mode));
}

llvm::RoundingMode Lowerer::constrained_rounding(Value* mode) {
  if (auto* c = llvm::dyn_cast<llvm::ConstantInt>(mode)) {
    switch (c->getZExtValue()) {
      case 0: return llvm::RoundingMode::TowardZero;
      case 1: return llvm::RoundingMode::NearestTiesToEven;
      case 2: return llvm::RoundingMode::TowardPositive;
      case 3: return llvm::RoundingMode::TowardNegative;
      default: break;
    }
  }
  return llvm::RoundingMode::Dynamic;
}

// The promotion count at the builder's position (LoweringOptions::entry_counter):
// count += 1; the entry that makes it equal due returns kind Jump (with
// rip = `rip`, when given), the others go on at `go_on`.
void Lowerer::emit_entry_count(llvm::IRBuilder<>& ib, llvm::BasicBlock* go_on, std::optional<uint64_t> rip) {
  Value* counter = ib.CreateIntToPtr(c64(opts_.entry_counter), ptr_, "counter");
  Value* n = ib.CreateAdd(ib.CreateAlignedLoad(i64_, counter, llvm::Align(8)), c64(1));
  ib.CreateAlignedStore(n, counter, llvm::Align(8));
  auto* promote = llvm::BasicBlock::Create(ctx_, "promote", fn_);
  Value* due_count = ib.CreateAlignedLoad(i64_, ib.CreateConstInBoundsGEP1_64(i8_, counter, 8), llvm::Align(8));
  ib.CreateCondBr(ib.CreateICmpEQ(n, due_count), promote, go_on, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
  llvm::IRBuilder<> pb(promote);
  if (rip)
    pb.CreateAlignedStore(c64(*rip), pb.CreateConstInBoundsGEP1_64(i8_, state_, core::reg_info(core::X86Reg::Rip).offset),
                          llvm::Align(8));
  pb.CreateRet(c64(encode_exit(TermKind::Jump)));
}

void Lowerer::reset_block_state() {
  regs_.fill(RegCache{});
  vals_.clear();
  types_.clear();
  cur_mode_ = c32(kNearest);
  dyn_mode_ = nullptr;
  mxcsr_for_mode_ = nullptr;
  load_sink_ = nullptr;
}

llvm::Type* Lowerer::reg_storage_ty(const core::RegInfo& ri) {
  switch (ri.kind) {
    case RegKind::Flag: return b_.getInt1Ty();
    case RegKind::I16: return b_.getInt16Ty();
    case RegKind::I32: return i32_;
    case RegKind::I64: return i64_;
    case RegKind::V128: return v128_;
  }
  return nullptr;
}

Value* Lowerer::get_full(core::X86Reg r) {
  auto& c = regs_[static_cast<size_t>(r)];
  if (c.value) return c.value;
  c.value = region_ ? current(static_cast<size_t>(r)) : load_state_reg(b_, core::reg_info(r));
  return c.value;
}

Value* Lowerer::load_state_reg(llvm::IRBuilder<>& b, const core::RegInfo& ri) {
  if (ri.kind == RegKind::Flag)
    return b.CreateTrunc(b.CreateLoad(i8_, b.CreateConstInBoundsGEP1_64(i8_, state_, ri.offset), std::string(ri.name)),
                         b.getInt1Ty());
  return b.CreateAlignedLoad(reg_storage_ty(ri), b.CreateConstInBoundsGEP1_64(i8_, state_, ri.offset), reg_align(ri),
                             std::string(ri.name));
}

void Lowerer::init_region_slots(std::span<const ir::IRBlock> blocks) {
  region_ = true;
  std::array<bool, core::kNumX86Regs> used{};
  used[static_cast<size_t>(core::X86Reg::Mxcsr)] = true;
  for (const auto& blk : blocks)
    for (const auto& op : blk.ops) {
      if (op.opcode != Opcode::GetReg && op.opcode != Opcode::SetReg) continue;
      used[op.aux] = true;
      if (op.opcode == Opcode::SetReg) written_[op.aux] = true;
    }
  for (size_t i = 0; i < used.size(); ++i) {
    if (!used[i]) continue;
    const auto& ri = core::kX86Regs[i];
    slots_[i] = b_.CreateAlloca(reg_storage_ty(ri), nullptr, fmt::format("{}.slot", ri.name));
    b_.CreateStore(load_state_reg(b_, ri), slots_[i]);
  }
}

void Lowerer::compute_dispatch_targets(std::span<const ir::IRBlock> blocks) {
  const size_t n = blocks.size();
  auto known = [&](size_t i) { return i < opts_.indirect_targets.size() && !opts_.indirect_targets[i].empty(); };
  // The members an indirect jump or call may reach inside the region.
  auto indirect_members_of = [&](size_t i) {
    std::vector<size_t> out;
    if (!known(i)) {
      for (size_t m = 0; m < n; ++m) out.push_back(m);
      return out;
    }
    for (uint64_t pc : opts_.indirect_targets[i])
      if (auto it = region_index_.find(pc); it != region_index_.end()) out.push_back(it->second);
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  // Successors within the function: a call continues at its return site.
  auto successors = [&](size_t i) {
    std::vector<size_t> out;
    auto add = [&](uint64_t pc) {
      if (auto it = region_index_.find(pc); it != region_index_.end()) out.push_back(it->second);
    };
    const ir::Terminator& t = blocks[i].term;
    switch (t.kind) {
      case TermKind::Jump: add(t.target.value()); break;
      case TermKind::Branch: add(t.target.value()); add(t.fallthrough.value()); break;
      case TermKind::Call: add(t.fallthrough.value()); break;
      case TermKind::IndirectJump: out = indirect_members_of(i); break;
      default: break;
    }
    for (const ir::Op& op : blocks[i].ops)
      if (op.opcode == Opcode::ExitIf) add(op.imm);
    return out;
  };
  dispatch_targets_.assign(n, {});
  for (size_t c = 0; c < n; ++c) {
    const ir::Terminator& t = blocks[c].term;
    if (t.kind == TermKind::IndirectJump || (t.kind == TermKind::Call && t.value != ir::kNoValue))
      dispatch_targets_[c] = indirect_members_of(c);
  }
  // A return lands at the return site of a call whose callee reaches it.
  for (size_t c = 0; c < n; ++c) {
    const ir::Terminator& t = blocks[c].term;
    if (t.kind != TermKind::Call) continue;
    auto site = region_index_.find(t.fallthrough.value());
    if (site == region_index_.end()) continue;
    std::vector<size_t> callees;
    if (t.value == ir::kNoValue) {
      if (auto it = region_index_.find(t.target.value()); it != region_index_.end()) callees.push_back(it->second);
    } else {
      callees = dispatch_targets_[c];
    }
    std::vector<bool> seen(n, false);
    std::vector<size_t> work;
    for (size_t e : callees)
      if (!seen[e]) seen[e] = true, work.push_back(e);
    while (!work.empty()) {
      size_t b = work.back();
      work.pop_back();
      if (blocks[b].term.kind == TermKind::Ret) dispatch_targets_[b].push_back(site->second);
      for (size_t s : successors(b))
        if (!seen[s]) seen[s] = true, work.push_back(s);
    }
  }
  for (size_t b = 0; b < n; ++b)
    if (blocks[b].term.kind == TermKind::Ret) {
      auto& v = dispatch_targets_[b];
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    }
}

void Lowerer::leave_region(Value* rip, uint64_t code) {
  if (!common_exit_) {
    common_exit_ = llvm::BasicBlock::Create(ctx_, "region_exit", fn_);
    llvm::IRBuilder<> eb(common_exit_);
    exit_rip_ = eb.CreatePHI(i64_, 8, "exit_rip");
    exit_code_ = eb.CreatePHI(i64_, 8, "exit_code");
    for (size_t i = 0; i < written_.size(); ++i)
      if (written_[i]) exit_vals_[i] = eb.CreatePHI(slots_[i]->getAllocatedType(), 8);
    for (size_t i = 0; i < written_.size(); ++i)
      if (written_[i]) store_state_reg(eb, core::kX86Regs[i], exit_vals_[i]);
    eb.CreateAlignedStore(exit_rip_, eb.CreateConstInBoundsGEP1_64(i8_, state_, core::reg_info(core::X86Reg::Rip).offset),
                          llvm::Align(8));
    eb.CreateRet(exit_code_);
  }
  std::array<Value*, core::kNumX86Regs> vals{};
  for (size_t i = 0; i < written_.size(); ++i)
    if (written_[i]) vals[i] = current(i);
  auto* from = b_.GetInsertBlock();
  b_.CreateBr(common_exit_);
  exit_rip_->addIncoming(rip, from);
  exit_code_->addIncoming(c64(code), from);
  for (size_t i = 0; i < written_.size(); ++i)
    if (written_[i]) exit_vals_[i]->addIncoming(vals[i], from);
}

void Lowerer::set_full(core::X86Reg r, Value* v) {
  auto& c = regs_[static_cast<size_t>(r)];
  c.value = v;
  c.dirty = true;
  unsynced_[static_cast<size_t>(r)] = true;
}

void Lowerer::store_dirty() {
  if (region_) {
    for (size_t i = 0; i < written_.size(); ++i)
      if (written_[i]) store_state_reg(b_, core::kX86Regs[i], current(i));
    return;
  }
  for (size_t i = 0; i < regs_.size(); ++i)
    if (regs_[i].dirty) store_state_reg(b_, core::kX86Regs[i], regs_[i].value);
}

void Lowerer::flush_and_forget() {
  store_dirty();
  unsynced_.fill(false);
  regs_.fill(RegCache{});
  dyn_mode_ = nullptr;
  mxcsr_for_mode_ = nullptr;
}

Value* Lowerer::read_reg(const ir::Op& op) {
  auto r = static_cast<core::X86Reg>(op.aux);
  const auto& ri = core::reg_info(r);
  Value* full = get_full(r);
  llvm::Type* t = ty(op.type);
  uint32_t bits = ir::type_bits(op.type);
  uint32_t off = static_cast<uint32_t>(op.imm);
  if (ri.kind == RegKind::Flag) return full;
  if (bits == ri.size * 8) return b_.CreateBitCast(full, t);
  if (ri.kind == RegKind::V128 && (off * 8) % bits == 0) {
    auto* vt = llvm::FixedVectorType::get(t, 128 / bits);
    return b_.CreateExtractElement(b_.CreateBitCast(full, vt), off * 8 / bits);
  }
  Value* wide = b_.CreateBitCast(full, b_.getIntNTy(ri.size * 8));
  if (off) wide = b_.CreateLShr(wide, off * 8);
  return b_.CreateBitCast(b_.CreateTrunc(wide, b_.getIntNTy(bits)), t);
}

void Lowerer::write_reg(const ir::Op& op, Value* v, Type vt) {
  auto r = static_cast<core::X86Reg>(op.aux);
  const auto& ri = core::reg_info(r);
  uint32_t bits = ir::type_bits(vt);
  uint32_t off = static_cast<uint32_t>(op.imm);
  if (ri.kind == RegKind::Flag) return set_full(r, v);
  if (bits == ri.size * 8) return set_full(r, b_.CreateBitCast(v, reg_storage_ty(ri)));
  Value* full = get_full(r);
  if (ri.kind == RegKind::V128 && (off * 8) % bits == 0) {
    auto* vec_t = llvm::FixedVectorType::get(ty(vt), 128 / bits);
    Value* nv = b_.CreateInsertElement(b_.CreateBitCast(full, vec_t), v, off * 8 / bits);
    return set_full(r, b_.CreateBitCast(nv, v128_));
  }
  auto* wt = b_.getIntNTy(ri.size * 8);
  Value* wide = b_.CreateBitCast(full, wt);
  llvm::APInt mask = llvm::APInt::getBitsSet(ri.size * 8, off * 8, off * 8 + bits);
  Value* part = b_.CreateZExt(b_.CreateBitCast(v, b_.getIntNTy(bits)), wt);
  if (off) part = b_.CreateShl(part, off * 8);
  Value* merged = b_.CreateOr(b_.CreateAnd(wide, llvm::ConstantInt::get(wt, ~mask)), part);
  set_full(r, b_.CreateBitCast(merged, reg_storage_ty(ri)));
}

void Lowerer::sink_load(Value* v) {
  llvm::Type* t = v->getType();
  if (t->isVectorTy()) {
    v = b_.CreateExtractElement(b_.CreateBitCast(v, v128_), uint64_t{0});
  } else if (t->isFloatingPointTy()) {
    v = b_.CreateBitCast(v, b_.getIntNTy(t->getPrimitiveSizeInBits().getFixedValue()));
  }
  v = b_.CreateZExtOrTrunc(v, i64_);
  load_sink_ = load_sink_ ? b_.CreateXor(load_sink_, v) : v;
}

void Lowerer::consume_loads(bool reset) {
  if (!load_sink_) return;
  if (sink_slot_) {
    b_.CreateAlignedStore(load_sink_, sink_slot_, llvm::Align(8), true);
  } else {
    auto* fty = llvm::FunctionType::get(b_.getVoidTy(), {i64_}, false);
    b_.CreateCall(fty, llvm::InlineAsm::get(fty, "", "r", true), {load_sink_});
  }
  if (reset) load_sink_ = nullptr;
}

Value* Lowerer::opaque(Value* v) {
  if (opts_.fast_isel) return v;
  llvm::Type* t = v->getType();
  const char* constraint = nullptr;
  if (t->isIntegerTy(8) || t->isIntegerTy(16) || t->isIntegerTy(32) || t->isIntegerTy(64)) constraint = "=r,0";
  if (t->isFloatTy() || t->isDoubleTy() || t == v128_) constraint = "=x,0";
  if (!constraint) return v;
  auto* fty = llvm::FunctionType::get(t, {t}, false);
  return b_.CreateCall(fty, llvm::InlineAsm::get(fty, "", constraint, false), {v});
}

void Lowerer::barrier() {
  if (opts_.fast_isel || !direct_restartable()) return;
  auto* fty = llvm::FunctionType::get(b_.getVoidTy(), {ptr_}, false);
  b_.CreateCall(fty, llvm::InlineAsm::get(fty, "", "r,~{memory}", true), {state_});
}

void Lowerer::emit_sync(Value* rip, bool consume, uint64_t skip) {
  consume_loads(consume);
  // A later get_reg rip of this block reads the state's rip as it was on
  // entry (the interpreter's answer), not the one stored here: load it
  // before the store (LLVM drops the load when nothing reads it). Regions
  // keep rip in a slot.
  if (!region_) get_full(core::X86Reg::Rip);
  barrier();
  for (size_t i = 0; i < unsynced_.size(); ++i) {
    if (!unsynced_[i] || (skip >> i & 1)) continue;
    store_state_reg(b_, core::kX86Regs[i], current(i));
    if (consume && !region_) regs_[i].dirty = false;
  }
  b_.CreateAlignedStore(rip, rip_ptr(), llvm::Align(8));
  barrier();
  if (consume) {
    for (size_t i = 0; i < unsynced_.size(); ++i) unsynced_[i] = unsynced_[i] && (skip >> i & 1);
    sync_pending_ = false;
    span_read_ = false;
  }
}

void Lowerer::compute_entry_unsynced(std::span<const ir::IRBlock> blocks) {
  entry_unsynced_.assign(blocks.size(), RegSet{});
  entry_span_read_.assign(blocks.size(), false);
  entry_span_reads_.assign(blocks.size(), SpanReads{});
  bool changed = true;
  auto merge = [&](size_t m, const RegSet& in, bool read, const SpanReads* reads) {
    for (size_t r = 0; r < in.size(); ++r)
      if (in[r] && !entry_unsynced_[m][r]) entry_unsynced_[m][r] = changed = true;
    if (read && !entry_span_read_[m]) entry_span_read_[m] = changed = true;
    if (read && reads && entry_span_reads_[m].merge(*reads)) changed = true;
  };
  while (changed) {
    changed = false;
    for (size_t i = 0; i < blocks.size(); ++i) {
      RegSet s = entry_unsynced_[i];
      bool pending = false, span_read = entry_span_read_[i];
      StoreSyncs syncs = stores_needing_sync(blocks[i], entry_span_reads_[i]);
      const SpanReads* reads_here = nullptr;  // what the open span read, at the current edge
      size_t next_edge = 0;
      auto edge_at = [&](size_t k) {
        while (next_edge < syncs.edges.size() && syncs.edges[next_edge].first < k) ++next_edge;
        reads_here = next_edge < syncs.edges.size() && syncs.edges[next_edge].first == k ? &syncs.edges[next_edge].second
                                                                                         : nullptr;
      };
      // Under softmmu a member entered mid-span takes everything as read
      // (the rule before the locations): the precise rule measured slower
      // there, with more spills in the region it changed (docs/jit.md,
      // "Restartable state").
      static const SpanReads kAnything{true, {}};
      const bool precise = opts_.memory == MemoryStrategy::Direct;
      auto span_reads = [&] { return precise && reads_here ? reads_here : &kAnything; };
      auto edge = [&](uint64_t pc) {
        if (auto it = region_index_.find(pc); it != region_index_.end())
          merge(it->second, pending ? RegSet{} : s, !pending && span_read, span_reads());
      };
      auto to_all = [&](const std::vector<size_t>* only) {
        for (size_t m = 0; m < blocks.size(); ++m)
          if (!only || std::binary_search(only->begin(), only->end(), m))
            merge(m, pending ? RegSet{} : s, !pending && span_read, span_reads());
      };
      const std::vector<bool>& reads = insn_reads_[i];
      const std::vector<uint64_t>& flags_reset = flags_reset_[i];
      for (size_t k = 0; k < blocks[i].ops.size(); ++k) {
        const ir::Op& op = blocks[i].ops[k];
        switch (op.opcode) {
          case Opcode::InsnStart:
            if (pending && (reads[k] || span_read)) {
              for (size_t r = 0; r < s.size(); ++r) s[r] = s[r] && (flags_reset[k] >> r & 1);
              pending = false;
              span_read = false;
            }
            span_read = span_read || reads[k];
            break;
          case Opcode::SetReg: s[op.aux] = true; break;
          case Opcode::CallHelper: s = RegSet{}; pending = true; break;
          case Opcode::Store: case Opcode::Fill: case Opcode::Copy: pending = pending || syncs.at[k]; break;
          case Opcode::AtomicRmw: case Opcode::AtomicCmpxchg: pending = true; break;
          case Opcode::ExitIf: edge_at(k); edge(op.imm); break;
          default: break;
        }
      }
      edge_at(blocks[i].ops.size());
      const ir::Terminator& t = blocks[i].term;
      switch (t.kind) {
        case TermKind::Jump: edge(t.target.value()); break;
        case TermKind::Branch: edge(t.target.value()); edge(t.fallthrough.value()); break;
        case TermKind::Call:
          if (t.value == ir::kNoValue) edge(t.target.value());
          else if (opts_.indirect_members) to_all(nullptr);
          break;
        case TermKind::IndirectJump:
          if (opts_.indirect_members) to_all(nullptr);
          break;
        case TermKind::Ret:
          if (opts_.indirect_members) to_all(&return_sites_);
          break;
        default: break;
      }
    }
  }
}

void Lowerer::emit_return(Value* rip, uint64_t code) {
  if (region_) {
    restore_nearest_for_exit();
    return leave_region(rip, code);
  }
  store_dirty();
  b_.CreateAlignedStore(rip, rip_ptr(), llvm::Align(8));
  restore_nearest_for_exit();
  b_.CreateRet(c64(code));
}

Value* Lowerer::divide(Opcode opc, Value* a, Value* d) {
  switch (opc) {
    case Opcode::DivU: return b_.CreateUDiv(a, d);
    case Opcode::DivS: return b_.CreateSDiv(a, d);
    case Opcode::RemU: return b_.CreateURem(a, d);
    default: return b_.CreateSRem(a, d);
  }
}

Value* Lowerer::wide_divide(Opcode opc, Value* a, Value* d) {
  bool sgn = opc == Opcode::DivS || opc == Opcode::RemS;
  llvm::Type* wide = a->getType();
  Value* a64 = b_.CreateTrunc(a, i64_);
  Value* d64 = b_.CreateTrunc(d, i64_);
  auto widen = [&](Value* v) { return sgn ? b_.CreateSExt(v, wide) : b_.CreateZExt(v, wide); };
  Value* fits = b_.CreateAnd(b_.CreateICmpEQ(widen(a64), a), b_.CreateICmpEQ(widen(d64), d));
  if (sgn)
    fits = b_.CreateAnd(fits, b_.CreateNot(b_.CreateAnd(b_.CreateICmpEQ(a64, c64(uint64_t{1} << 63)),
                                                        b_.CreateICmpEQ(d64, c64(~uint64_t{0})))));
  auto* narrow_bb = llvm::BasicBlock::Create(ctx_, "div_narrow", fn_);
  auto* wide_bb = llvm::BasicBlock::Create(ctx_, "div_wide", fn_);
  auto* join = llvm::BasicBlock::Create(ctx_, "div_join", fn_);
  b_.CreateCondBr(fits, narrow_bb, wide_bb, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
  b_.SetInsertPoint(narrow_bb);
  Value* n = widen(divide(opc, a64, d64));
  b_.CreateBr(join);
  b_.SetInsertPoint(wide_bb);
  Value* w = divide(opc, a, d);
  b_.CreateBr(join);
  b_.SetInsertPoint(join);
  auto* phi = b_.CreatePHI(wide, 2, "quot");
  phi->addIncoming(n, narrow_bb);
  phi->addIncoming(w, wide_bb);
  return phi;
}

void Lowerer::side_exit(Value* cond, uint64_t code, const char* name) {
  auto* exit_bb = llvm::BasicBlock::Create(ctx_, name, fn_);
  auto* cont = llvm::BasicBlock::Create(ctx_, "cont", fn_);
  b_.CreateCondBr(cond, exit_bb, cont, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
  b_.SetInsertPoint(exit_bb);
  consume_loads(false);
  emit_return(c64(insn_pc_.value()), code);
  b_.SetInsertPoint(cont);
}

void Lowerer::fault_exit(Value* status, const char* name) {
  Value* cond = b_.CreateICmpNE(status, c32(0));
  if (!restartable()) return side_exit(cond, fault_code(), name);
  auto* exit_bb = llvm::BasicBlock::Create(ctx_, name, fn_);
  auto* cont = llvm::BasicBlock::Create(ctx_, "cont", fn_);
  b_.CreateCondBr(cond, exit_bb, cont, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
  b_.SetInsertPoint(exit_bb);
  restore_nearest_for_exit();
  b_.CreateRet(c64(fault_code() | kExitRestart));
  b_.SetInsertPoint(cont);
}

void Lowerer::continue_unless_exit_requested(llvm::BasicBlock* next, Value* rip, uint64_t code) {
  if (!opts_.exit_polls) {
    b_.CreateBr(next);
    return;
  }
  Value* req = b_.CreateAlignedLoad(i32_, mem_field(kMemCtxExitRequest), llvm::Align(4), "exit_req");
  auto* leave = llvm::BasicBlock::Create(ctx_, "exit_requested", fn_);
  b_.CreateCondBr(b_.CreateIsNotNull(req), leave, next, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
  b_.SetInsertPoint(leave);
  leave_region(rip, code);
}

void Lowerer::continue_with(Value* callee) {
  if (opts_.chain_by_return) {
    b_.CreateRet(b_.CreateOr(b_.CreatePtrToInt(callee, i64_), c64(kExitContinue)));
    return;
  }
  if (opts_.preserve_none) {
    // A tagged entry has this convention: tail-call it. An untagged one
    // (C, Fast code) goes back to run_unit, which calls it.
    Value* bits = b_.CreatePtrToInt(callee, i64_);
    auto* same = llvm::BasicBlock::Create(ctx_, "continue_pn", fn_);
    auto* other = llvm::BasicBlock::Create(ctx_, "continue_c", fn_);
    b_.CreateCondBr(b_.CreateICmpNE(b_.CreateAnd(bits, c64(kPreserveNoneTag)), c64(0)), same, other);
    b_.SetInsertPoint(other);
    b_.CreateRet(b_.CreateOr(bits, c64(kExitContinue)));
    b_.SetInsertPoint(same);
    callee = b_.CreateIntToPtr(b_.CreateAnd(bits, c64(~kPreserveNoneTag)), ptr_);
  }
  auto* call = b_.CreateCall(fn_->getFunctionType(), callee, {state_, mem_});
  call->setCallingConv(fn_->getCallingConv());
  call->setTailCallKind(llvm::CallInst::TCK_MustTail);
  b_.CreateRet(call);
}

void Lowerer::direct_exit(core::GuestAddr target, uint64_t code) {
  if (auto it = region_index_.find(target.value()); it != region_index_.end()) {
    if (sync_pending_) emit_sync(c64(target.value()), false);
    spill_to_slots();
    // A block that reads rip sees its own start, as after any exit.
    if (auto* rip_slot = slots_[static_cast<size_t>(core::X86Reg::Rip)]) b_.CreateStore(c64(target.value()), rip_slot);
    restore_nearest_for_exit();
    if (it->second > cur_block_) {  // a forward edge: no cycle closes here
      b_.CreateBr(block_entries_[it->second]);
      return;
    }
    // A back edge: the owner may ask running code to come back (its
    // translations changed).
    continue_unless_exit_requested(block_entries_[it->second], c64(target.value()), code);
    return;
  }
  if (!opts_.chain_exits) return emit_return(c64(target.value()), code);
  Value* slot = nullptr;
  if (chain_slots_.size() < opts_.chain_slot_capacity && opts_.chain_slot_storage) {
    void** word = opts_.chain_slot_storage + chain_slots_.size();
    slot = b_.CreateIntToPtr(c64(reinterpret_cast<uint64_t>(word)), ptr_);
    chain_slots_.push_back(ChainSlot{"", target, word});
  } else {
    std::string name = fmt::format("{}.chain{}", opts_.function_name, chain_slots_.size());
    auto* global = llvm::cast<llvm::GlobalVariable>(mod_.getOrInsertGlobal(name, ptr_));
    global->setInitializer(llvm::ConstantPointerNull::get(ptr_));
    global->setAlignment(llvm::Align(8));
    global->setDSOLocal(true);
    chain_slots_.push_back(ChainSlot{name, target});
    slot = global;
  }
  store_dirty();
  b_.CreateAlignedStore(c64(target.value()), rip_ptr(), llvm::Align(8));
  restore_nearest_for_exit();
  Value* succ = b_.CreateAlignedLoad(ptr_, slot, llvm::Align(8), "succ");
  auto* call_bb = llvm::BasicBlock::Create(ctx_, "chain", fn_);
  auto* ret_bb = llvm::BasicBlock::Create(ctx_, "unchained", fn_);
  b_.CreateCondBr(b_.CreateIsNotNull(succ), call_bb, ret_bb);
  b_.SetInsertPoint(call_bb);
  continue_with(succ);
  b_.SetInsertPoint(ret_bb);
  b_.CreateRet(c64(code));
}

void Lowerer::enter_member_if_target(Value* target, uint64_t code, bool is_return) {
  std::vector<size_t> all;
  if (!is_return)
    for (size_t i = 0; i < block_entries_.size(); ++i) all.push_back(i);
  const std::vector<size_t>& members = !dispatch_targets_.empty() ? dispatch_targets_[cur_block_]
                                       : is_return                  ? return_sites_
                                                                    : all;
  if (members.empty()) return;
  if (sync_pending_) emit_sync(target, false);
  spill_to_slots();
  restore_nearest_for_exit();
  auto* dispatch = llvm::BasicBlock::Create(ctx_, "indirect_dispatch", fn_);
  continue_unless_exit_requested(dispatch, target, code);
  b_.SetInsertPoint(dispatch);
  auto* outside = llvm::BasicBlock::Create(ctx_, "indirect_outside", fn_);
  auto* sw = b_.CreateSwitch(target, outside, static_cast<unsigned>(members.size()));
  for (size_t i : members) {
    uint64_t pc = block_pcs_[i];
    auto* rip_slot = slots_[static_cast<size_t>(core::X86Reg::Rip)];
    if (!rip_slot) {
      sw->addCase(b_.getInt64(pc), block_entries_[i]);
      continue;
    }
    auto* in = llvm::BasicBlock::Create(ctx_, "indirect_inside", fn_);
    sw->addCase(b_.getInt64(pc), in);
    b_.SetInsertPoint(in);
    b_.CreateStore(c64(pc), rip_slot);  // a block that reads rip sees its own start
    b_.CreateBr(block_entries_[i]);
  }
  b_.SetInsertPoint(outside);
}

void Lowerer::indirect_exit(Value* target, uint64_t code, bool is_return) {
  if (region_ && opts_.indirect_members) enter_member_if_target(target, code, is_return);
  if (!opts_.inline_jump_cache) return emit_return(target, code);
  store_dirty();
  b_.CreateAlignedStore(target, rip_ptr(), llvm::Align(8));
  restore_nearest_for_exit();
  Value* table = b_.CreateAlignedLoad(ptr_, mem_field(kMemCtxJumpCache), llvm::Align(8), "jcache");
  Value* mask = b_.CreateAlignedLoad(i64_, mem_field(kMemCtxJumpCacheMask), llvm::Align(8), "jmask");
  Value* idx = b_.CreateAnd(b_.CreateXor(target, b_.CreateLShr(target, 12)), mask);
  Value* entry = b_.CreateGEP(i8_, table, b_.CreateShl(idx, 4));
  Value* pc = b_.CreateAlignedLoad(i64_, entry, llvm::Align(8), "jpc");
  Value* fn = b_.CreateAlignedLoad(ptr_, b_.CreateConstInBoundsGEP1_64(i8_, entry, 8), llvm::Align(8), "jfn");
  Value* hit = b_.CreateAnd(b_.CreateICmpEQ(pc, target), b_.CreateIsNotNull(fn), "jhit");
  auto* call_bb = llvm::BasicBlock::Create(ctx_, "jcache_hit", fn_);
  auto* ret_bb = llvm::BasicBlock::Create(ctx_, "jcache_miss", fn_);
  b_.CreateCondBr(hit, call_bb, ret_bb);
  b_.SetInsertPoint(call_bb);
  continue_with(fn);
  b_.SetInsertPoint(ret_bb);
  b_.CreateRet(c64(code));
}

}  // namespace detail

using detail::Lowerer;

core::Result<LoweredFunction> lower_region(std::span<const ir::IRBlock> blocks, llvm::Module& module,
                                           const LoweringOptions& options) {
  if (options.direct_mask != 0 && (options.direct_mask & (options.direct_mask + 1)) != 0)
    return core::failf(core::ErrorCode::InvalidArgument, "direct_mask {:#x} is not 2^k - 1", options.direct_mask);
  if (options.preserve_none && options.target != LoweringTarget::X86_64)
    return core::fail(core::ErrorCode::InvalidArgument, "preserve_none is for x86-64 code only");
  return Lowerer(module, options).run(blocks);
}

core::Result<LoweredFunction> lower_block(const ir::IRBlock& block, llvm::Module& module, const LoweringOptions& options) {
  return lower_region(std::span<const ir::IRBlock>(&block, 1), module, options);
}

uint32_t count_instructions(const llvm::Module& module) {
  uint32_t n = 0;
  for (const auto& f : module)
    for (const auto& bb : f) n += static_cast<uint32_t>(bb.size());
  return n;
}

core::Result<std::string> lower_region_to_llvm_text(std::span<const ir::IRBlock> blocks, const LoweringOptions& options) {
  llvm::LLVMContext ctx;
  llvm::Module module("vm", ctx);
  auto r = lower_region(blocks, module, options);
  if (!r) return std::unexpected(r.error());
  std::string out;
  llvm::raw_string_ostream os(out);
  module.print(os, nullptr);
  return os.str();
}

core::Result<std::string> lower_to_llvm_text(const ir::IRBlock& block, const LoweringOptions& options) {
  return lower_region_to_llvm_text(std::span<const ir::IRBlock>(&block, 1), options);
}

}  // namespace vm::translate
