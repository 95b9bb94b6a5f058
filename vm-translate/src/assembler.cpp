#include "vm/translate/assembler.hpp"

#include <llvm/MC/MCAsmBackend.h>
#include <llvm/MC/MCAsmInfo.h>
#include <llvm/MC/MCCodeEmitter.h>
#include <llvm/MC/MCContext.h>
#include <llvm/MC/MCInstrInfo.h>
#include <llvm/MC/MCObjectFileInfo.h>
#include <llvm/MC/MCObjectWriter.h>
#include <llvm/MC/MCParser/MCAsmParser.h>
#include <llvm/MC/MCParser/MCTargetAsmParser.h>
#include <llvm/MC/MCRegisterInfo.h>
#include <llvm/MC/MCStreamer.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/MCTargetOptions.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include <mutex>

namespace vm::translate {

using core::ErrorCode;

core::Result<std::vector<uint8_t>> assemble_x86(std::string_view text) {
  static std::once_flag init;
  std::call_once(init, [] {
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmParser();
  });
  const std::string triple_name = "x86_64-unknown-linux-gnu";
  llvm::Triple triple(triple_name);
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple_name, err);
  if (!target) return core::fail(ErrorCode::Internal, "LLVM x86 target unavailable: " + err);

  std::unique_ptr<llvm::MCRegisterInfo> mri(target->createMCRegInfo(triple_name));
  llvm::MCTargetOptions options;
  std::unique_ptr<llvm::MCAsmInfo> mai(target->createMCAsmInfo(*mri, triple_name, options));
  std::unique_ptr<llvm::MCInstrInfo> mii(target->createMCInstrInfo());
  std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(triple_name, "", ""));

  std::string source = ".intel_syntax noprefix\n";
  source.append(text);
  source += "\n";
  llvm::SourceMgr srcmgr;
  srcmgr.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(source, "asm"), llvm::SMLoc());
  std::string diagnostics;
  auto collect = [](const llvm::SMDiagnostic& d, void* ctx) {
    auto* out = static_cast<std::string*>(ctx);
    if (!out->empty()) *out += "; ";
    *out += std::to_string(d.getLineNo() - 1) + ":" + std::to_string(d.getColumnNo() + 1) + ": " + d.getMessage().str();
  };
  srcmgr.setDiagHandler(collect, &diagnostics);

  llvm::MCContext ctx(triple, mai.get(), mri.get(), sti.get(), &srcmgr);
  ctx.setDiagnosticHandler([&](const llvm::SMDiagnostic& d, bool, const llvm::SourceMgr&, std::vector<const llvm::MDNode*>&) {
    collect(d, &diagnostics);
  });
  std::unique_ptr<llvm::MCObjectFileInfo> mofi(target->createMCObjectFileInfo(ctx, false));
  ctx.setObjectFileInfo(mofi.get());

  llvm::SmallVector<char, 0> object;
  llvm::raw_svector_ostream os(object);
  auto backend = std::unique_ptr<llvm::MCAsmBackend>(target->createMCAsmBackend(*sti, *mri, options));
  auto writer = backend->createObjectWriter(os);
  auto emitter = std::unique_ptr<llvm::MCCodeEmitter>(target->createMCCodeEmitter(*mii, ctx));
  std::unique_ptr<llvm::MCStreamer> streamer(
      target->createMCObjectStreamer(triple, ctx, std::move(backend), std::move(writer), std::move(emitter), *sti));
  std::unique_ptr<llvm::MCAsmParser> parser(llvm::createMCAsmParser(srcmgr, ctx, *streamer, *mai));
  std::unique_ptr<llvm::MCTargetAsmParser> tap(target->createMCAsmParser(*sti, *parser, *mii, options));
  if (!tap) return core::fail(ErrorCode::Internal, "LLVM x86 asm parser unavailable");
  parser->setTargetParser(*tap);
  if (parser->Run(false) || !diagnostics.empty())
    return core::fail(ErrorCode::Parse, diagnostics.empty() ? "assembly failed" : diagnostics);

  auto obj = llvm::object::ObjectFile::createObjectFile(llvm::MemoryBufferRef(llvm::StringRef(object.data(), object.size()), "obj"));
  if (!obj) return core::fail(ErrorCode::Internal, "cannot read the assembled object: " + llvm::toString(obj.takeError()));
  for (const llvm::object::SectionRef& sec : (*obj)->sections()) {
    auto name = sec.getName();
    if (!name || *name != ".text") continue;
    if (sec.relocations().begin() != sec.relocations().end())
      return core::fail(ErrorCode::Parse, "the text refers to a symbol outside itself (needs a relocation)");
    auto contents = sec.getContents();
    if (!contents) return core::fail(ErrorCode::Internal, "cannot read .text");
    return std::vector<uint8_t>(contents->begin(), contents->end());
  }
  return std::vector<uint8_t>{};
}

}  // namespace vm::translate
