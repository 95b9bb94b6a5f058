#include "cli_translate.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "vm/engine/jit.hpp"
#include "vm/ir/text.hpp"
#include "vm/translate/assembler.hpp"
#include "vm/translate/cross.hpp"
#include "vm/translate/x86.hpp"

namespace vm::engine::cli {

using core::ErrorCode;

namespace {

constexpr uint64_t kDefaultCodeAddr = 0x1000000;
// A function larger than this is almost certainly a misread symbol table.
constexpr uint64_t kMaxFunctionBytes = 64u << 20;
constexpr size_t kMaxBlocks = 200000;

struct TranslateArgs {
  std::string hex;
  std::string text;
  uint64_t at = kDefaultCodeAddr;
  std::string elf;
  std::string symbol;
  std::string target;
  std::string emit;
  std::string output;
  std::string tier = "fast";
  std::string mmu = "direct";
  CLI::App* cmd = nullptr;
};

TranslateArgs& args() {
  static TranslateArgs a;
  return a;
}

// ------------------------------------------------------------------ ELF ----

// Reads a T at `offset` of `file`, or nothing when it does not fit.
template <class T>
std::optional<T> read_at(const std::vector<uint8_t>& file, uint64_t offset) {
  if (offset > file.size() || file.size() - offset < sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, file.data() + offset, sizeof(T));
  return value;
}

bool range_in_file(const std::vector<uint8_t>& file, uint64_t offset, uint64_t size) {
  return offset <= file.size() && size <= file.size() - offset;
}

core::Result<std::vector<uint8_t>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::failf(ErrorCode::NotFound, "{}: cannot open", path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return core::failf(ErrorCode::InvalidArgument, "{}: read error", path);
  return bytes;
}

core::Result<std::vector<uint8_t>> parse_hex(const std::string& hex) {
  std::string digits;
  for (char c : hex)
    if (!std::isspace(static_cast<unsigned char>(c))) digits += c;
  if (digits.starts_with("0x") || digits.starts_with("0X")) digits.erase(0, 2);
  if (digits.empty()) return core::fail(ErrorCode::InvalidArgument, "--code: no bytes");
  if (digits.size() % 2 != 0) return core::fail(ErrorCode::Parse, "--code: odd number of hex digits");
  std::vector<uint8_t> out;
  for (size_t i = 0; i < digits.size(); i += 2) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    int hi = nibble(digits[i]), lo = nibble(digits[i + 1]);
    if (hi < 0 || lo < 0) return core::failf(ErrorCode::Parse, "--code: '{}' is not hex", digits.substr(i, 2));
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

}  // namespace

core::Result<FunctionCode> read_elf_function(const std::string& path, const std::string& symbol) {
  auto file = read_file(path);
  if (!file) return std::unexpected(file.error());
  auto bad = [&](std::string_view why) { return core::failf(ErrorCode::Parse, "{}: not a usable ELF file: {}", path, why); };

  auto eh = read_at<Elf64_Ehdr>(*file, 0);
  if (!eh || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) return bad("no ELF header");
  if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB) return bad("not 64-bit little-endian");
  if (eh->e_machine != EM_X86_64) return bad(fmt::format("machine {} is not x86-64", eh->e_machine));
  if (eh->e_shnum == 0) return bad("no section headers");
  if (eh->e_shentsize != sizeof(Elf64_Shdr)) return bad("unexpected section header size");
  if (!range_in_file(*file, eh->e_shoff, uint64_t{eh->e_shnum} * sizeof(Elf64_Shdr)))
    return bad("section headers outside the file");
  std::vector<Elf64_Shdr> sections(eh->e_shnum);
  std::memcpy(sections.data(), file->data() + eh->e_shoff, sections.size() * sizeof(Elf64_Shdr));

  // The full symbol table if there is one; a stripped file may still have the dynamic one.
  const Elf64_Shdr* symtab = nullptr;
  for (const auto& s : sections)
    if (s.sh_type == SHT_SYMTAB) symtab = &s;
  if (!symtab)
    for (const auto& s : sections)
      if (s.sh_type == SHT_DYNSYM) symtab = &s;
  if (!symtab) return core::failf(ErrorCode::NotFound, "{}: no symbol table (stripped?)", path);
  if (symtab->sh_link >= sections.size()) return bad("symbol table names no string table");
  const Elf64_Shdr& strtab = sections[symtab->sh_link];
  if (!range_in_file(*file, symtab->sh_offset, symtab->sh_size) || !range_in_file(*file, strtab.sh_offset, strtab.sh_size))
    return bad("symbol or string table outside the file");
  if (symtab->sh_entsize != 0 && symtab->sh_entsize != sizeof(Elf64_Sym)) return bad("unexpected symbol size");

  std::optional<Elf64_Sym> found;
  for (uint64_t off = 0; off + sizeof(Elf64_Sym) <= symtab->sh_size; off += sizeof(Elf64_Sym)) {
    auto sym = read_at<Elf64_Sym>(*file, symtab->sh_offset + off);
    if (!sym || sym->st_name >= strtab.sh_size) continue;
    const char* name = reinterpret_cast<const char*>(file->data() + strtab.sh_offset + sym->st_name);
    size_t max_len = strtab.sh_size - sym->st_name;
    if (strnlen(name, max_len) != symbol.size() || std::memcmp(name, symbol.data(), symbol.size()) != 0) continue;
    // Several symbols may share a name (a local in two objects): take the first function with a size.
    if (!found || (ELF64_ST_TYPE(sym->st_info) == STT_FUNC && ELF64_ST_TYPE(found->st_info) != STT_FUNC)) found = *sym;
  }
  if (!found) return core::failf(ErrorCode::NotFound, "{}: no symbol '{}'", path, symbol);
  if (found->st_size == 0) return core::failf(ErrorCode::InvalidArgument, "{}: symbol '{}' has size 0", path, symbol);
  if (found->st_size > kMaxFunctionBytes)
    return core::failf(ErrorCode::InvalidArgument, "{}: symbol '{}' is {} bytes, too large", path, symbol, found->st_size);
  if (found->st_shndx == SHN_UNDEF || found->st_shndx >= sections.size())
    return core::failf(ErrorCode::InvalidArgument, "{}: symbol '{}' is not defined in a section", path, symbol);
  const Elf64_Shdr& sec = sections[found->st_shndx];
  if (sec.sh_type == SHT_NOBITS || !(sec.sh_flags & SHF_EXECINSTR))
    return core::failf(ErrorCode::InvalidArgument, "{}: symbol '{}' is not in a code section", path, symbol);
  if (found->st_value < sec.sh_addr || found->st_value - sec.sh_addr > sec.sh_size ||
      found->st_size > sec.sh_size - (found->st_value - sec.sh_addr))
    return bad(fmt::format("symbol '{}' lies outside its section", symbol));
  uint64_t offset = sec.sh_offset + (found->st_value - sec.sh_addr);
  if (!range_in_file(*file, offset, found->st_size)) return bad(fmt::format("symbol '{}' lies outside the file", symbol));
  FunctionCode out;
  out.address = found->st_value;
  out.bytes.assign(file->begin() + static_cast<std::ptrdiff_t>(offset),
                   file->begin() + static_cast<std::ptrdiff_t>(offset + found->st_size));
  return out;
}

core::Result<std::vector<ir::IRBlock>> decode_function(core::GuestMemory& memory, uint64_t begin, uint64_t end) {
  std::map<uint64_t, ir::IRBlock> blocks;
  std::set<uint64_t> pending{begin};
  auto want = [&](uint64_t pc) {
    if (pc >= begin && pc < end && !blocks.contains(pc)) pending.insert(pc);
  };
  while (!pending.empty()) {
    uint64_t pc = *pending.begin();
    pending.erase(pending.begin());
    if (blocks.size() >= kMaxBlocks) return core::failf(ErrorCode::InvalidArgument, "more than {} blocks", kMaxBlocks);
    auto block = translate::decode_block(memory, core::GuestAddr(pc));
    if (!block) {
      // Only an instruction cut off by the end of the code gets here: its first bytes are mapped.
      return core::failf(ErrorCode::Parse, "undecodable bytes at {:#x}: {}", pc, block.error().message);
    }
    if (block->term.kind == ir::TermKind::Trap && block->term.trap == ir::TrapReason::InvalidOpcode) {
      // ud2 is code (it traps on purpose); bytes Zydis cannot decode are not.
      uint64_t at = block->term.target.value();
      std::vector<uint8_t> bytes(std::min<uint64_t>(15, end - at));
      if (!memory.fetch(core::GuestAddr(at), bytes) || !translate::describe_insn(bytes, at))
        return core::failf(ErrorCode::Parse, "{}", block->term.message);
    }
    const ir::Terminator& t = block->term;
    switch (t.kind) {
      case ir::TermKind::Jump: want(t.target.value()); break;
      case ir::TermKind::Branch:
        want(t.target.value());
        want(t.fallthrough.value());
        break;
      case ir::TermKind::Call:
        if (t.value == ir::kNoValue) want(t.target.value());
        want(t.fallthrough.value());
        break;
      default: break;
    }
    want(pc + block->guest_len);
    blocks.emplace(pc, std::move(*block));
  }
  std::vector<ir::IRBlock> out;
  out.reserve(blocks.size());
  for (auto& [pc, b] : blocks) out.push_back(std::move(b));
  return out;
}

namespace {

core::Result<std::string> render(const TranslateArgs& a, const std::vector<ir::IRBlock>& blocks,
                                 translate::Target target, Tier tier, translate::MemoryStrategy mmu) {
  auto emit = translate::parse_emit_kind(a.emit);
  if (a.emit == "ir") {
    std::string out;
    for (const auto& b : blocks) out += ir::print(b) + "\n";
    return out;
  }
  if (target == translate::Target::X86_64 && *emit != translate::EmitKind::Object) {
    // The JIT's own host-tuned machine and tier pipelines: what `vm run` would execute.
    JitOptions jo;
    jo.memory = mmu;
    auto jit = JITCompiler::create(jo);
    if (!jit) return std::unexpected(jit.error());
    Stage stage = *emit == translate::EmitKind::Assembly ? Stage::Assembly
                  : tier == Tier::Optimized              ? Stage::Optimized
                                                         : Stage::Lowered;
    std::string out;
    for (const auto& b : blocks) {
      auto text = (*jit)->dump(b, tier, stage);
      if (!text) return std::unexpected(text.error());
      out += fmt::format("{} guest block {:#x} ({} tier)\n", stage == Stage::Assembly ? "#" : ";", b.start_pc.value(),
                         tier_name(tier));
      out += *text;
    }
    return out;
  }
  translate::CrossOptions co;
  co.memory = mmu;
  co.optimize = tier == Tier::Optimized;
  auto cross = translate::CrossTranslator::create(target, co);
  if (!cross) return std::unexpected(cross.error());
  return (*cross)->translate(blocks, *emit);
}

core::Result<std::string> translate_to_text(const TranslateArgs& a) {
  auto target = translate::parse_target(a.target);
  if (a.target.empty()) return core::fail(ErrorCode::InvalidArgument, "--target is required (host, aarch64 or riscv64)");
  if (!target || a.target == "x86_64" || a.target == "x86-64")
    return core::failf(ErrorCode::InvalidArgument, "--target {}: expected host, aarch64 or riscv64", a.target);
  if (a.emit.empty()) return core::fail(ErrorCode::InvalidArgument, "--emit is required (ir, llvm, asm or obj)");
  if (a.emit != "ir" && a.emit != "llvm" && a.emit != "asm" && a.emit != "obj")
    return core::failf(ErrorCode::InvalidArgument, "--emit {}: expected ir, llvm, asm or obj", a.emit);
  auto tier = parse_tier(a.tier);
  if (!tier || a.tier == "opt") return core::failf(ErrorCode::InvalidArgument, "--tier {}: expected fast or optimized", a.tier);
  translate::MemoryStrategy mmu;
  if (a.mmu == "direct") mmu = translate::MemoryStrategy::Direct;
  else if (a.mmu == "softmmu") mmu = translate::MemoryStrategy::SoftMmu;
  else return core::failf(ErrorCode::InvalidArgument, "--mmu {}: expected direct or softmmu", a.mmu);
  if (a.emit == "obj" && a.output.empty())
    return core::fail(ErrorCode::InvalidArgument, "--emit obj writes a binary object: give -o FILE");

  int sources = int(!a.hex.empty()) + int(!a.text.empty()) + int(!a.elf.empty());
  if (sources != 1) return core::fail(ErrorCode::InvalidArgument, "give exactly one of --code HEX, --asm TEXT and --elf FILE");
  if (!a.elf.empty() && a.symbol.empty()) return core::fail(ErrorCode::InvalidArgument, "--elf needs --symbol NAME");
  if (a.elf.empty() && !a.symbol.empty()) return core::fail(ErrorCode::InvalidArgument, "--symbol needs --elf FILE");
  if (!a.elf.empty() && a.cmd->count("--at") > 0)
    return core::fail(ErrorCode::InvalidArgument, "--at cannot be used with --elf (the symbol gives the address)");

  FunctionCode code;
  if (!a.elf.empty()) {
    auto fn = read_elf_function(a.elf, a.symbol);
    if (!fn) return std::unexpected(fn.error());
    code = std::move(*fn);
  } else {
    auto bytes = a.hex.empty() ? translate::assemble_x86(a.text) : parse_hex(a.hex);
    if (!bytes) return std::unexpected(bytes.error());
    code.address = a.at;
    code.bytes = std::move(*bytes);
  }
  if (code.bytes.empty()) return core::fail(ErrorCode::InvalidArgument, "no code");
  if (code.address + code.bytes.size() < code.address)
    return core::failf(ErrorCode::InvalidArgument, "code at {:#x} wraps around the address space", code.address);
  uint64_t end = code.address + code.bytes.size();
  // Only the function itself is mapped, so no block can run past its end.
  core::RegionMemory memory;
  if (auto ok = memory.add_region(core::GuestAddr(code.address), std::move(code.bytes), core::kPermRead | core::kPermExec); !ok)
    return std::unexpected(ok.error());
  auto blocks = decode_function(memory, code.address, end);
  if (!blocks) return std::unexpected(blocks.error());
  return render(a, *blocks, *target, *tier, mmu);
}

}  // namespace

void add_translate_command(CLI::App& app) {
  TranslateArgs& a = args();
  a.cmd = app.add_subcommand("translate", "Translate x86-64 code to vm-ir, LLVM IR, host or cross assembly, or an object");
  a.cmd->add_option("--code", a.hex, "Guest machine code as hex bytes");
  a.cmd->add_option("--asm", a.text, "Guest code as Intel-syntax assembly");
  a.cmd->add_option("--at", a.at, "Guest address of --code/--asm (default 0x1000000)")->default_str("0x1000000");
  a.cmd->add_option("--elf", a.elf, "An x86-64 ELF file; translate the function --symbol of it");
  a.cmd->add_option("--symbol", a.symbol, "Function to translate from --elf (its symbol table entry)");
  a.cmd->add_option("--target", a.target, "host, aarch64 or riscv64");
  a.cmd->add_option("--emit", a.emit, "ir (vm-ir), llvm (LLVM IR), asm (assembly) or obj (ELF object; needs -o)");
  a.cmd->add_option("-o,--output", a.output, "Write to FILE instead of stdout");
  a.cmd->add_option("--tier", a.tier, "fast (no IR optimisation, fast codegen; default) or optimized (lean pipeline)");
  a.cmd->add_option("--mmu", a.mmu, "Guest memory access: direct (default) or softmmu (inline TLB + slow path)");
}

bool translate_selected(const CLI::App& app) {
  (void)app;
  return args().cmd != nullptr && args().cmd->parsed();
}

int translate_execute() {
  const TranslateArgs& a = args();
  auto out = translate_to_text(a);
  if (!out) {
    fmt::print(stderr, "vm translate: {}\n", out.error().message);
    return 2;
  }
  if (a.output.empty()) {
    fmt::print("{}", *out);
    return 0;
  }
  std::ofstream file(a.output, std::ios::binary | std::ios::trunc);
  if (file) file.write(out->data(), static_cast<std::streamsize>(out->size()));
  if (!file) {
    fmt::print(stderr, "vm translate: cannot write {}\n", a.output);
    return 2;
  }
  return 0;
}

}  // namespace vm::engine::cli
