// `vm translate`: the command-line front of the LLVM backend. It shows every
// stage a piece of guest code goes through — lifted vm-ir, LLVM IR, host or
// cross assembly, relocatable objects for AArch64 / RISC-V — for raw bytes or
// for one function of an x86-64 ELF file, so backend work can be inspected
// without writing a test. docs/cli.md documents the options.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/ir/ir.hpp"

namespace vm::engine::cli {

// Adds the `translate` subcommand to `app`. After parsing, if
// translate_selected(), translate_execute() does the work and returns the
// exit status (2 for every usage or input error, one line on stderr).
void add_translate_command(CLI::App& app);
bool translate_selected(const CLI::App& app);
int translate_execute();

// The code of one function: where it is mapped and its bytes.
struct FunctionCode {
  uint64_t address = 0;
  std::vector<uint8_t> bytes;
};

// Finds `symbol` in the symbol table of an x86-64 ELF64 file and returns its
// bytes (st_value, st_size), read through the section that holds it.
core::Result<FunctionCode> read_elf_function(const std::string& path, const std::string& symbol);

// Decodes every block of the code in `memory` that starts in [begin, end):
// the first at `begin`, then each block's direct successors inside the range
// and the address right after each block (code reached by fall-through or
// only indirectly, e.g. through a jump table). Sorted by start address.
core::Result<std::vector<ir::IRBlock>> decode_function(core::GuestMemory& memory, uint64_t begin, uint64_t end);

}  // namespace vm::engine::cli
