#include "vm/translate/state_json.hpp"

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

namespace vm::translate {

using core::ErrorCode;
using nlohmann::json;

namespace {

core::Result<uint64_t> parse_hex_u64(const json& v, std::string_view what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (!v.is_string()) return core::failf(ErrorCode::Parse, "{}: expected a hex string", what);
  std::string s = v.get<std::string>();
  std::string_view d = s;
  if (d.starts_with("0x") || d.starts_with("0X")) d.remove_prefix(2);
  if (d.empty() || d.size() > 16) return core::failf(ErrorCode::Parse, "{}: '{}' is not a 64-bit hex value", what, s);
  uint64_t out = 0;
  for (char c : d) {
    int n = std::isxdigit(static_cast<unsigned char>(c)) ? (std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10)) : -1;
    if (n < 0) return core::failf(ErrorCode::Parse, "{}: '{}' is not a hex value", what, s);
    out = out << 4 | static_cast<uint64_t>(n);
  }
  return out;
}

core::Result<std::vector<uint8_t>> parse_hex_bytes(std::string_view s, std::string_view what) {
  std::string clean;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.size() % 2) return core::failf(ErrorCode::Parse, "{}: odd number of hex digits", what);
  std::vector<uint8_t> out;
  for (size_t i = 0; i < clean.size(); i += 2) {
    auto hi = std::isxdigit(static_cast<unsigned char>(clean[i])), lo = std::isxdigit(static_cast<unsigned char>(clean[i + 1]));
    if (!hi || !lo) return core::failf(ErrorCode::Parse, "{}: '{}' is not hex", what, clean.substr(i, 2));
    out.push_back(static_cast<uint8_t>(std::stoul(clean.substr(i, 2), nullptr, 16)));
  }
  return out;
}

core::Result<uint8_t> parse_perms(std::string_view p) {
  if (p.size() != 3) return core::failf(ErrorCode::Parse, "permissions '{}' must look like \"rw-\"", p);
  uint8_t out = 0;
  static constexpr char kLetters[] = {'r', 'w', 'x'};
  for (int i = 0; i < 3; ++i) {
    if (p[i] == kLetters[i]) out |= static_cast<uint8_t>(1 << i);
    else if (p[i] != '-') return core::failf(ErrorCode::Parse, "permissions '{}' must look like \"rw-\"", p);
  }
  return out;
}

core::Result<MachineState> parse_impl(std::string_view text) {
  json doc = json::parse(text);  // throws on malformed input; caught by the caller
  if (!doc.is_object()) return core::fail(ErrorCode::Parse, "state: expected a JSON object");
  MachineState st;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& key = it.key();
    if (key == "registers") {
      if (!it->is_object()) return core::fail(ErrorCode::Parse, "registers: expected an object");
      for (auto r = it->begin(); r != it->end(); ++r) {
        auto id = core::find_reg(r.key());
        if (!id || core::reg_info(*id).kind == core::RegKind::Flag)
          return core::failf(ErrorCode::Parse, "registers: unknown register '{}'", r.key());
        const core::RegInfo& ri = core::reg_info(*id);
        uint8_t* dst = core::reg_ptr(st.regs, *id);
        if (ri.kind == core::RegKind::V128) {
          if (!r->is_string()) return core::failf(ErrorCode::Parse, "{}: expected 32 hex digits", r.key());
          std::string s = r->get<std::string>();
          if (s.starts_with("0x")) s = s.substr(2);
          if (s.size() != 32) return core::failf(ErrorCode::Parse, "{}: expected 32 hex digits", r.key());
          auto hi = parse_hex_u64(json(s.substr(0, 16)), r.key());
          auto lo = parse_hex_u64(json(s.substr(16)), r.key());
          if (!hi) return std::unexpected(hi.error());
          if (!lo) return std::unexpected(lo.error());
          std::memcpy(dst, &*lo, 8);
          std::memcpy(dst + 8, &*hi, 8);
          continue;
        }
        auto v = parse_hex_u64(*r, r.key());
        if (!v) return std::unexpected(v.error());
        if (ri.size < 8 && (*v >> (8 * ri.size)) != 0)
          return core::failf(ErrorCode::Parse, "{}: value {:#x} does not fit in {} bytes", r.key(), *v, ri.size);
        std::memcpy(dst, &*v, ri.size);
      }
    } else if (key == "flags") {
      if (!it->is_object()) return core::fail(ErrorCode::Parse, "flags: expected an object");
      for (auto f = it->begin(); f != it->end(); ++f) {
        auto id = core::find_reg(f.key());
        if (!id || core::reg_info(*id).kind != core::RegKind::Flag)
          return core::failf(ErrorCode::Parse, "flags: unknown flag '{}'", f.key());
        int v = f->is_boolean() ? (f->get<bool>() ? 1 : 0) : f->is_number_integer() ? f->get<int>() : -1;
        if (v != 0 && v != 1) return core::failf(ErrorCode::Parse, "flags: {} must be 0 or 1", f.key());
        *core::reg_ptr(st.regs, *id) = static_cast<uint8_t>(v);
      }
    } else if (key == "memory") {
      if (!it->is_array()) return core::fail(ErrorCode::Parse, "memory: expected an array of regions");
      for (const json& region : *it) {
        if (!region.is_object() || !region.contains("address"))
          return core::fail(ErrorCode::Parse, "memory: each region needs an address");
        for (auto k = region.begin(); k != region.end(); ++k)
          if (k.key() != "address" && k.key() != "perms" && k.key() != "bytes" && k.key() != "size")
            return core::failf(ErrorCode::Parse, "memory: unknown key '{}'", k.key());
        auto addr = parse_hex_u64(region["address"], "memory.address");
        if (!addr) return std::unexpected(addr.error());
        uint8_t perms = core::kPermRW;
        if (region.contains("perms")) {
          if (!region["perms"].is_string()) return core::fail(ErrorCode::Parse, "memory.perms: expected a string");
          auto p = parse_perms(region["perms"].get<std::string>());
          if (!p) return std::unexpected(p.error());
          perms = *p;
        }
        std::vector<uint8_t> bytes;
        if (region.contains("bytes")) {
          if (!region["bytes"].is_string()) return core::fail(ErrorCode::Parse, "memory.bytes: expected a hex string");
          auto b = parse_hex_bytes(region["bytes"].get<std::string>(), "memory.bytes");
          if (!b) return std::unexpected(b.error());
          bytes = std::move(*b);
        }
        if (region.contains("size")) {
          auto size = parse_hex_u64(region["size"], "memory.size");
          if (!size) return std::unexpected(size.error());
          if (*size > (uint64_t{1} << 30)) return core::fail(ErrorCode::Parse, "memory.size: regions are limited to 1 GiB");
          if (*size < bytes.size()) return core::fail(ErrorCode::Parse, "memory.size is smaller than the bytes given");
          bytes.resize(*size, 0);
        }
        if (auto ok = st.memory.add_region(core::GuestAddr(*addr), std::move(bytes), perms); !ok)
          return core::failf(ok.error().code, "memory region at {:#x}: {}", *addr, ok.error().message);
      }
    } else if (key == "exit") {
      continue;  // output-only; accepted so that an output can be fed back as input
    } else {
      return core::failf(ErrorCode::Parse, "state: unknown key '{}'", key);
    }
  }
  return st;
}

std::string hex64(uint64_t v) { return fmt::format("{:#x}", v); }

}  // namespace

core::Result<MachineState> parse_state_json(std::string_view text) {
  try {
    return parse_impl(text);
  } catch (const json::exception& e) {
    return core::fail(ErrorCode::Parse, std::string("state JSON: ") + e.what());
  }
}

std::string state_to_json(const MachineState& st, const RunResult* exit, const JsonOutputOptions& options) {
  // ordered_json keeps registers in the state table's order.
  using ojson = nlohmann::ordered_json;
  ojson regs = ojson::object();
  ojson flags = ojson::object();
  for (const core::RegInfo& ri : core::kX86Regs) {
    const uint8_t* p = core::reg_ptr(st.regs, ri.id);
    if (ri.kind == core::RegKind::Flag) {
      flags[std::string(ri.name)] = *p;
    } else if (ri.kind == core::RegKind::V128) {
      uint64_t lo, hi;
      std::memcpy(&lo, p, 8);
      std::memcpy(&hi, p + 8, 8);
      regs[std::string(ri.name)] = fmt::format("{:016x}{:016x}", hi, lo);
    } else {
      uint64_t v = 0;
      std::memcpy(&v, p, ri.size);
      regs[std::string(ri.name)] = hex64(v);
    }
  }
  ojson doc = ojson::object();
  doc["registers"] = regs;
  doc["flags"] = flags;
  if (options.include_memory) {
    ojson mem = ojson::array();
    for (const auto& r : st.memory.regions()) {
      std::string bytes;
      bytes.reserve(r.bytes.size() * 2);
      for (uint8_t b : r.bytes) bytes += fmt::format("{:02x}", b);
      ojson region = ojson::object();
      region["address"] = hex64(r.base.value());
      region["perms"] = core::perm_string(r.perms);
      region["bytes"] = bytes;
      mem.push_back(region);
    }
    doc["memory"] = mem;
  }
  if (exit) {
    ojson e = ojson::object();
    e["reason"] = std::string(run_reason_name(exit->reason));
    e["pc"] = hex64(exit->pc.value());
    if (exit->reason == RunResult::Reason::Trap) e["trap"] = std::string(ir::trap_reason_name(exit->trap));
    if (exit->fault_addr) e["fault_address"] = hex64(exit->fault_addr->value());
    if (!exit->message.empty()) e["message"] = exit->message;
    e["blocks"] = exit->blocks;
    doc["exit"] = e;
  }
  return doc.dump(2) + "\n";
}

}  // namespace vm::translate
