// Parser of the vm-ir text form. The grammar is in docs/ir-text.md.
//
// A hand-written lexer plus recursive descent over lines; it checks syntax
// only (types and SSA rules are the verifier's) and reports the first
// problem as "line:column: message".
#include <algorithm>
#include <bit>
#include <optional>

#include <fmt/format.h>

#include "text_common.hpp"
#include "vm/ir/text.hpp"

namespace vm::ir {
namespace {

using namespace text_detail;

// ------------------------------------------------------------- lexer ----

enum class Tok : uint8_t { End, Newline, Word, Value, Punct, String };

struct Token {
  Tok kind = Tok::End;
  std::string_view text;  // Word: the word; Value: what follows '%'; Punct: the character
  std::string str;        // String: the decoded contents
  size_t line = 1;
  size_t col = 1;
};

bool is_word_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_word_char(char c) { return is_word_start(c) || c == '.'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A short, printable rendering of source text for messages.
std::string excerpt(std::string_view s) {
  constexpr size_t kMax = 24;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out;
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::End: return "end of input";
    case Tok::Newline: return "end of line";
    case Tok::Word: return fmt::format("'{}'", excerpt(t.text));
    case Tok::Value: return fmt::format("'%{}'", excerpt(t.text));
    case Tok::Punct: return fmt::format("'{}'", t.text);
    case Tok::String: return "a string";
  }
  return "?";
}

// ------------------------------------------------------------ parser ----

class Parser {
public:
  explicit Parser(std::string_view src) : src_(src) {}

  core::Result<std::vector<IRBlock>> run(bool exactly_one) {
    std::vector<IRBlock> blocks;
    if (!parse_file(exactly_one, blocks)) return std::unexpected(std::move(*error_));
    return blocks;
  }

private:
  std::string_view src_;
  size_t pos_ = 0;
  size_t line_ = 1;
  size_t col_ = 1;
  Token tok_;
  std::optional<core::Error> error_;

  bool fail_at(size_t line, size_t col, std::string msg) {
    if (!error_) error_ = core::Error{core::ErrorCode::Parse, fmt::format("{}:{}: {}", line, col, msg), std::nullopt};
    return false;
  }
  bool fail(std::string msg) { return fail_at(tok_.line, tok_.col, std::move(msg)); }
  bool fail_expected(std::string_view what) { return fail(fmt::format("expected {}, found {}", what, describe(tok_))); }

  // ---- lexing
  char peek_char(size_t ahead = 0) const { return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0'; }
  bool at_end(size_t ahead = 0) const { return pos_ + ahead >= src_.size(); }
  void bump() {
    if (src_[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }

  bool advance() {
    tok_ = Token{};
    for (;;) {
      while (!at_end() && (peek_char() == ' ' || peek_char() == '\t' || peek_char() == '\r')) bump();
      if (!at_end() && peek_char() == ';') {
        while (!at_end() && peek_char() != '\n') bump();
        continue;
      }
      break;
    }
    tok_.line = line_;
    tok_.col = col_;
    if (at_end()) {
      tok_.kind = Tok::End;
      return true;
    }
    char c = peek_char();
    size_t start = pos_;
    if (c == '\n') {
      bump();
      tok_.kind = Tok::Newline;
      return true;
    }
    if (is_word_start(c)) {
      while (!at_end() && is_word_char(peek_char())) bump();
      tok_.kind = Tok::Word;
      tok_.text = src_.substr(start, pos_ - start);
      return true;
    }
    if (c == '%') {
      bump();
      size_t digits = pos_;
      while (!at_end() && is_word_start(peek_char())) bump();
      tok_.kind = Tok::Value;
      tok_.text = src_.substr(digits, pos_ - digits);
      return true;
    }
    if (c == ':' || c == '=' || c == ',' || c == '+' || c == '[' || c == ']' || c == '{' || c == '}') {
      bump();
      tok_.kind = Tok::Punct;
      tok_.text = src_.substr(start, 1);
      return true;
    }
    if (c == '"') return lex_string();
    auto uc = static_cast<unsigned char>(c);
    if (uc >= 0x21 && uc < 0x7f) return fail(fmt::format("unexpected character '{}'", c));
    return fail(fmt::format("unexpected byte 0x{:02x}", uc));
  }

  bool lex_string() {
    tok_.kind = Tok::String;
    bump();  // opening quote
    for (;;) {
      if (at_end() || peek_char() == '\n') return fail("unterminated string");
      char c = peek_char();
      if (c == '"') {
        bump();
        return true;
      }
      if (c != '\\') {
        tok_.str += c;
        bump();
        continue;
      }
      size_t esc_line = line_, esc_col = col_;
      bump();
      if (at_end() || peek_char() == '\n') return fail("unterminated string");
      char e = peek_char();
      bump();
      switch (e) {
        case '\\': tok_.str += '\\'; break;
        case '"': tok_.str += '"'; break;
        case 'n': tok_.str += '\n'; break;
        case 't': tok_.str += '\t'; break;
        case 'x': {
          int hi = hex_digit(peek_char(0));
          int lo = at_end(1) ? -1 : hex_digit(peek_char(1));
          if (at_end() || hi < 0 || lo < 0)
            return fail_at(esc_line, esc_col, "bad escape: \\x needs two hex digits");
          bump();
          bump();
          tok_.str += static_cast<char>(hi * 16 + lo);
          break;
        }
        default:
          return fail_at(esc_line, esc_col,
                         fmt::format("bad escape '\\{}' (use \\\\ \\\" \\n \\t or \\xHH)", excerpt(std::string_view(&e, 1))));
      }
    }
  }

  // ---- token helpers
  bool is_punct(char c) const { return tok_.kind == Tok::Punct && tok_.text[0] == c; }
  bool is_word(std::string_view w) const { return tok_.kind == Tok::Word && tok_.text == w; }

  bool skip_newlines() {
    while (tok_.kind == Tok::Newline)
      if (!advance()) return false;
    return true;
  }

  bool expect_punct(char c) {
    if (!is_punct(c)) return fail_expected(fmt::format("'{}'", c));
    return advance();
  }
  bool expect_keyword(std::string_view w) {
    if (!is_word(w)) return fail_expected(fmt::format("'{}'", w));
    return advance();
  }

  // "0x" followed by 1+ hex digits, value at most `bits` wide (<= 128).
  bool parse_hex(unsigned bits, uint64_t& lo, uint64_t& hi) {
    if (tok_.kind != Tok::Word || !(tok_.text.starts_with("0x") || tok_.text.starts_with("0X")))
      return fail_expected("a hex literal (0x...)");
    std::string_view digits = tok_.text.substr(2);
    if (digits.empty()) return fail(fmt::format("bad hex literal '{}'", excerpt(tok_.text)));
    lo = hi = 0;
    unsigned used = 0;  // significant bits so far
    for (char c : digits) {
      int d = hex_digit(c);
      if (d < 0) return fail(fmt::format("bad hex literal '{}'", excerpt(tok_.text)));
      if (used > 0 || d != 0) used = used == 0 ? static_cast<unsigned>(std::bit_width(static_cast<unsigned>(d))) : used + 4;
      if (used > bits) return fail(fmt::format("hex literal '{}' does not fit in {} bits", excerpt(tok_.text), bits));
      hi = (hi << 4) | (lo >> 60);
      lo = (lo << 4) | static_cast<uint64_t>(d);
    }
    return advance();
  }
  bool parse_hex64(uint64_t& v) {
    uint64_t hi = 0;
    return parse_hex(64, v, hi);
  }
  bool parse_addr(GuestAddr& a) {
    uint64_t v = 0;
    if (!parse_hex64(v)) return false;
    a = GuestAddr(v);
    return true;
  }

  bool parse_decimal(std::string_view text, uint64_t max, uint64_t& v, std::string_view what) {
    v = 0;
    if (text.empty()) return fail_expected(what);
    for (char c : text) {
      if (!is_digit(c)) return fail(fmt::format("bad decimal number '{}' (expected {})", excerpt(text), what));
      uint64_t d = static_cast<uint64_t>(c - '0');
      if (v > (max - d) / 10) return fail(fmt::format("number '{}' is too large (at most {})", excerpt(text), max));
      v = v * 10 + d;
    }
    return true;
  }
  bool parse_dec(uint64_t max, uint64_t& v, std::string_view what) {
    if (tok_.kind != Tok::Word || !is_digit(tok_.text[0])) return fail_expected(what);
    if (!parse_decimal(tok_.text, max, v, what)) return false;
    return advance();
  }

  bool parse_value(ValueId& id) {
    if (tok_.kind != Tok::Value) return fail_expected("a value (%N)");
    uint64_t v = 0;
    if (tok_.text.empty() || !std::all_of(tok_.text.begin(), tok_.text.end(), is_digit))
      return fail(fmt::format("bad value name '%{}' (values are %N with decimal N)", excerpt(tok_.text)));
    if (!parse_decimal(tok_.text, kNoValue - 1, v, "a value id")) return false;
    id = static_cast<ValueId>(v);
    return advance();
  }

  bool parse_register(uint32_t& id, uint64_t& offset) {
    if (tok_.kind != Tok::Word) return fail_expected("a register name");
    auto r = core::find_reg(tok_.text);
    if (!r) return fail(fmt::format("unknown register '{}'", excerpt(tok_.text)));
    id = static_cast<uint32_t>(*r);
    offset = 0;
    if (!advance()) return false;
    if (is_punct('+')) {
      if (!advance()) return false;
      return parse_dec(UINT64_MAX, offset, "a byte offset");
    }
    return true;
  }

  // ---- file and block structure
  bool parse_file(bool exactly_one, std::vector<IRBlock>& blocks) {
    if (!advance() || !skip_newlines()) return false;
    while (tok_.kind != Tok::End) {
      if (exactly_one && !blocks.empty()) return fail(fmt::format("unexpected {} after the block", describe(tok_)));
      IRBlock block;
      if (!parse_block(block)) return false;
      blocks.push_back(std::move(block));
      if (tok_.kind != Tok::Newline && tok_.kind != Tok::End)
        return fail(fmt::format("unexpected {} after '}}'", describe(tok_)));
      if (!skip_newlines()) return false;
    }
    if (exactly_one && blocks.empty()) return fail_expected("'block'");
    return true;
  }

  bool parse_block(IRBlock& block) {
    if (!expect_keyword("block")) return false;
    uint64_t start = 0;
    if (!parse_hex64(start)) return false;
    block.start_pc = GuestAddr(start);
    if (!expect_keyword("len")) return false;
    uint64_t len = 0;
    if (!parse_dec(UINT32_MAX, len, "the guest byte length (decimal)")) return false;
    block.guest_len = static_cast<uint32_t>(len);
    if (!expect_punct('{')) return false;

    size_t term_line = 0;  // line of the terminator, 0 while there is none
    for (;;) {
      if (!skip_newlines()) return false;
      if (is_punct('}')) {
        if (term_line == 0) return fail("missing terminator: the block must end with jump, branch, indirect_jump, ret, call, syscall, trap or exit");
        return advance();
      }
      if (tok_.kind == Tok::End) return fail("unexpected end of input inside the block (missing '}')");
      bool is_term = tok_.kind == Tok::Word &&
                     std::find(kTermNames.begin() + 1, kTermNames.end(), tok_.text) != kTermNames.end();
      if (term_line != 0) {
        return fail(is_term ? fmt::format("duplicate terminator (the block already ended on line {})", term_line)
                            : fmt::format("op after the terminator (line {})", term_line));
      }
      if (is_term) {
        term_line = tok_.line;
        if (!parse_terminator(block.term)) return false;
      } else {
        Op op;
        if (!parse_op(op)) return false;
        block.ops.push_back(op);
      }
      if (tok_.kind != Tok::Newline && !is_punct('}'))
        return fail(fmt::format("unexpected {} at the end of the statement", describe(tok_)));
    }
  }

  // ---- ops
  bool parse_op(Op& op) {
    if (tok_.kind == Tok::Value) {
      if (!parse_value(op.result)) return false;
      if (!expect_punct(':')) return false;
      if (tok_.kind != Tok::Word) return fail_expected("a type");
      auto t = parse_type(tok_.text);
      if (!t) return fail(fmt::format("unknown type '{}'", excerpt(tok_.text)));
      op.type = *t;
      if (!advance() || !expect_punct('=')) return false;
    }
    if (tok_.kind != Tok::Word) return fail_expected("an opcode");
    if (!parse_mnemonic(op)) return false;
    const OpcodeInfo& info = opcode_info(op.opcode);
    op.nargs = static_cast<uint8_t>(std::max(info.nargs, 0));

    auto values = [&](size_t n) {
      for (size_t i = 0; i < n; ++i) {
        if (i > 0 && !expect_punct(',')) return false;
        if (!parse_value(op.args[i])) return false;
      }
      return true;
    };
    uint64_t v = 0;
    switch (op.opcode) {
      case Opcode::Const: {
        unsigned bits = op.type == Type::Void ? 64 : type_bits(op.type);
        return parse_hex(bits, op.imm, op.imm_hi);
      }
      case Opcode::GetReg: return parse_register(op.aux, op.imm);
      case Opcode::SetReg:
        return parse_register(op.aux, op.imm) && expect_punct(',') && parse_value(op.args[0]);
      case Opcode::InsnStart: return parse_hex64(op.imm);
      case Opcode::VExtract:
      case Opcode::VInsert:
        if (!values(static_cast<size_t>(info.nargs)) || !expect_punct(',')) return false;
        if (!parse_dec(UINT32_MAX, v, "a lane index")) return false;
        op.aux = static_cast<uint32_t>(v);
        return true;
      case Opcode::Copy:
        if (!values(3) || !expect_punct(',')) return false;
        if (!parse_dec(UINT32_MAX, v, "the element width in bits")) return false;
        op.aux = static_cast<uint32_t>(v);
        return true;
      case Opcode::VShuffle: return values(2) && expect_punct(',') && parse_shuffle_mask(op);
      case Opcode::CallHelper: return parse_helper_call(op);
      case Opcode::TrapIf: {
        if (!values(1) || !expect_punct(',')) return false;
        if (tok_.kind != Tok::Word) return fail_expected("a trap reason");
        auto reason = parse_trap_reason(tok_.text);
        if (!reason) return fail(fmt::format("unknown trap reason '{}'", excerpt(tok_.text)));
        op.aux = static_cast<uint32_t>(*reason);
        return advance();
      }
      case Opcode::ExitIf: return values(1) && expect_punct(',') && parse_hex64(op.imm);
      default: return values(static_cast<size_t>(info.nargs));
    }
  }

  // "name[.modifier][.lane]"; each part is checked against the opcode table.
  bool parse_mnemonic(Op& op) {
    std::string_view word = tok_.text;
    size_t line = tok_.line, col = tok_.col;
    size_t dot = word.find('.');
    std::string_view name = word.substr(0, dot);
    auto opc = parse_opcode(name);
    if (!opc) return fail(fmt::format("unknown opcode '{}'", excerpt(name)));
    op.opcode = *opc;
    const OpcodeInfo& info = opcode_info(op.opcode);

    std::vector<std::pair<std::string_view, size_t>> parts;  // suffix and its column
    while (dot != std::string_view::npos) {
      size_t next = word.find('.', dot + 1);
      std::string_view part = word.substr(dot + 1, next == std::string_view::npos ? std::string_view::npos : next - dot - 1);
      parts.emplace_back(part, col + dot + 1);
      dot = next;
    }
    size_t i = 0;
    auto part_fail = [&](size_t at, std::string msg) { return fail_at(line, at, std::move(msg)); };

    if (info.mod == ModKind::Ext) {
      op.aux = op.type == Type::Void ? 0 : type_bits(op.type);
      bool ext_part = i < parts.size() && (parts[i].first.starts_with("zx") || parts[i].first.starts_with("sx") ||
                                           (!parts[i].first.empty() && is_digit(parts[i].first[0])));
      if (ext_part) {
        auto [part, at] = parts[i++];
        std::string_view digits = part;
        if (part.starts_with("zx")) {
          op.mod = static_cast<uint8_t>(Ext::Zero);
          digits = part.substr(2);
        } else if (part.starts_with("sx")) {
          op.mod = static_cast<uint8_t>(Ext::Sign);
          digits = part.substr(2);
        }
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
          return part_fail(at, fmt::format("bad memory width '.{}' (expected .zxN, .sxN or .N)", excerpt(part)));
        uint64_t bits = 0;
        for (char c : digits) {
          bits = bits * 10 + static_cast<uint64_t>(c - '0');
          if (bits > UINT32_MAX) return part_fail(at, fmt::format("memory width '.{}' is too large", excerpt(part)));
        }
        op.aux = static_cast<uint32_t>(bits);
      }
    } else if (info.mod != ModKind::None) {
      if (i >= parts.size())
        return part_fail(col + word.size(), fmt::format("'{}' needs {}", info.name, modifier_kind_description(info.mod)));
      auto names = modifier_names(info.mod);
      auto [part, at] = parts[i++];
      auto it = std::find(names.begin(), names.end(), part);
      if (it == names.end())
        return part_fail(at, fmt::format("'.{}' is not {}", excerpt(part), modifier_kind_description(info.mod)));
      op.mod = static_cast<uint8_t>(it - names.begin());
    }
    if (i < parts.size()) {
      auto [part, at] = parts[i];
      if (auto lane = parse_lane(part)) {
        if (!info.lane_wise) return part_fail(at, fmt::format("'{}' takes no lane suffix", info.name));
        op.lane = *lane;
        ++i;
      }
    }
    if (i < parts.size()) {
      auto [part, at] = parts[i];
      return part_fail(at, fmt::format("unexpected suffix '.{}' on '{}'", excerpt(part), info.name));
    }
    return advance();
  }

  bool parse_shuffle_mask(Op& op) {
    if (!expect_punct('[')) return false;
    for (int i = 0; i < 16; ++i) {
      if (i > 0 && !expect_punct(',')) return false;
      uint64_t b = 0;
      if (!parse_dec(255, b, "a shuffle selector (0..255)")) return false;
      uint64_t& word = i < 8 ? op.imm : op.imm_hi;
      word |= b << (8 * (i % 8));
    }
    if (is_punct(',')) return fail("a shuffle mask has exactly 16 entries");
    return expect_punct(']');
  }

  bool parse_helper_call(Op& op) {
    if (tok_.kind != Tok::Word) return fail_expected("a helper name");
    auto h = parse_helper(tok_.text);
    if (!h) return fail(fmt::format("unknown helper '{}'", excerpt(tok_.text)));
    op.aux = static_cast<uint32_t>(*h);
    if (!advance()) return false;
    op.nargs = 0;
    while (is_punct(',')) {
      if (op.nargs == op.args.size()) return fail("call_helper takes at most 3 arguments");
      if (!advance() || !parse_value(op.args[op.nargs])) return false;
      ++op.nargs;
    }
    return true;
  }

  // ---- terminators
  bool parse_terminator(Terminator& t) {
    auto kind = static_cast<TermKind>(std::find(kTermNames.begin(), kTermNames.end(), tok_.text) - kTermNames.begin());
    t.kind = kind;
    if (!advance()) return false;
    switch (kind) {
      case TermKind::Jump:
      case TermKind::Syscall:
      case TermKind::Exit: return parse_addr(t.target);
      case TermKind::Branch:
        return parse_value(t.value) && expect_punct(',') && parse_addr(t.target) && expect_punct(',') &&
               parse_addr(t.fallthrough);
      case TermKind::IndirectJump:
      case TermKind::Ret: return parse_value(t.value);
      case TermKind::Call:
        if (tok_.kind == Tok::Value) {
          if (!parse_value(t.value)) return false;
        } else if (!parse_addr(t.target)) {
          return false;
        }
        return expect_punct(',') && expect_keyword("ret") && parse_addr(t.fallthrough);
      case TermKind::Trap: return parse_trap(t);
      case TermKind::None: break;
    }
    return fail("internal: unknown terminator");
  }

  bool parse_trap(Terminator& t) {
    if (tok_.kind != Tok::Word) return fail_expected("a trap reason");
    auto reason = parse_trap_reason(tok_.text);
    if (!reason) return fail(fmt::format("unknown trap reason '{}'", excerpt(tok_.text)));
    t.trap = *reason;
    if (!advance() || !parse_addr(t.target)) return false;
    if (is_word("vector")) {
      if (t.trap != TrapReason::Interrupt) return fail("only an interrupt trap takes a vector");
      uint64_t v = 0, hi = 0;
      if (!advance() || !parse_hex(8, v, hi)) return false;
      t.vector = static_cast<uint8_t>(v);
    }
    if (tok_.kind == Tok::String) {
      t.message = std::move(tok_.str);
      return advance();
    }
    return true;
  }
};


}  // namespace

core::Result<IRBlock> parse(std::string_view text) {
  auto blocks = Parser(text).run(true);
  if (!blocks) return std::unexpected(std::move(blocks.error()));
  return std::move(blocks->front());
}

core::Result<std::vector<IRBlock>> parse_blocks(std::string_view text) { return Parser(text).run(false); }

}  // namespace vm::ir
