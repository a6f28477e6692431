//! Tracepoint fields as text, the way perf (libtraceevent) prints them: the format's
//! `print fmt` is parsed once per event (a C format string and argument expressions over
//! `REC->field`), then evaluated on each sample's raw data.
//!
//! Supported: integer and string fields (fixed `char[]` and `__data_loc`), casts, the C
//! operators, `?:`, `__get_str`, `__print_flags`, `__print_symbolic`, and printf's `%d %i %u
//! %x %X %o %c %s %p` with flags, width, precision and length. A format outside that subset
//! falls back to `name=value` pairs.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::tracing::{EventFormat, Field, TraceFormats};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(u64),
    Str(String),
    Ident(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "{", "}", ",", "?", ":", "+",
    "-", "*", "/", "%", "<", ">", "&", "|", "^", "!", "~", ".", "[", "]",
];

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn lex(s: &str) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' {
            let start = i + 1;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            out.push(Tok::Str(unescape(s.get(start..i.min(b.len()))?)));
            i += 1;
        } else if c == b'\'' {
            // 'c'
            let ch = *b.get(i + 1)?;
            out.push(Tok::Num(ch as u64));
            i += 3;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let t = s[start..i].trim_end_matches(['u', 'U', 'l', 'L']);
            let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u64::from_str_radix(h, 16).ok()?
            } else if t.len() > 1 && t.starts_with('0') {
                u64::from_str_radix(&t[1..], 8).ok()?
            } else {
                t.parse().ok()?
            };
            out.push(Tok::Num(v));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s[start..i].to_string()));
        } else {
            let op = OPS.iter().find(|o| s[i..].starts_with(**o))?;
            out.push(Tok::Op(op));
            i += op.len();
        }
    }
    Some(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Num(u64),
    Str(String),
    Field(usize),
    Cast {
        size: u8,
        signed: bool,
        e: Box<Expr>,
    },
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    Flags(Box<Expr>, String, Vec<(u64, String)>),
    Symbolic(Box<Expr>, Vec<(u64, String)>),
}

struct Parser<'a> {
    t: &'a [Tok],
    pos: usize,
    ev: &'a EventFormat,
}

/// Size and signedness of a C type named by identifiers (and `*`).
fn type_of(words: &[String], pointer: bool) -> Option<(u8, bool)> {
    if pointer {
        return Some((8, false));
    }
    let unsigned = words.iter().any(|w| w == "unsigned");
    let w: Vec<&str> = words
        .iter()
        .map(String::as_str)
        .filter(|w| !matches!(*w, "unsigned" | "signed" | "const" | "volatile"))
        .collect();
    let (size, signed) = match w.as_slice() {
        [] | ["int"] => (4, !unsigned),
        ["char"] => (1, !unsigned),
        ["short"] | ["short", "int"] => (2, !unsigned),
        ["long"] | ["long", "int"] | ["long", "long"] | ["long", "long", "int"] => (8, !unsigned),
        ["u8"] | ["bool"] | ["__u8"] => (1, false),
        ["s8"] | ["__s8"] => (1, true),
        ["u16"] | ["__u16"] => (2, false),
        ["s16"] | ["__s16"] => (2, true),
        ["u32"] | ["__u32"] | ["gfp_t"] => (4, false),
        ["s32"] | ["__s32"] | ["pid_t"] => (4, true),
        ["u64"] | ["__u64"] | ["size_t"] | ["dma_addr_t"] => (8, false),
        ["s64"] | ["__s64"] | ["ssize_t"] | ["loff_t"] => (8, true),
        _ => return None,
    };
    Some((size, signed))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.pos)
    }
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, op: &str) -> Option<()> {
        self.eat(op).then_some(())
    }

    fn expr(&mut self) -> Option<Expr> {
        let c = self.binary(0)?;
        if self.eat("?") {
            let a = self.expr()?;
            self.expect(":")?;
            let b = self.expr()?;
            return Some(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Some(c)
    }

    fn binary(&mut self, min: u8) -> Option<Expr> {
        const LEVELS: &[&[&str]] = &[
            &["||"],
            &["&&"],
            &["|"],
            &["^"],
            &["&"],
            &["==", "!="],
            &["<", "<=", ">", ">="],
            &["<<", ">>"],
            &["+", "-"],
            &["*", "/", "%"],
        ];
        if min as usize >= LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(min + 1)?;
        while let Some(Tok::Op(o)) = self.peek() {
            let Some(op) = LEVELS[min as usize].iter().find(|x| *x == o) else {
                break;
            };
            self.pos += 1;
            let rhs = self.binary(min + 1)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<Expr> {
        for op in ["-", "!", "~"] {
            if self.eat(op) {
                return Some(Expr::Unary(op, Box::new(self.unary()?)));
            }
        }
        if self.eat("+") {
            return self.unary();
        }
        if matches!(self.peek(), Some(Tok::Op("("))) {
            // A cast: identifiers and '*' only, then ')'.
            let mut j = self.pos + 1;
            let mut words = Vec::new();
            let mut pointer = false;
            while let Some(t) = self.t.get(j) {
                match t {
                    Tok::Ident(w) if w != "REC" => words.push(w.clone()),
                    Tok::Op("*") => pointer = true,
                    _ => break,
                }
                j += 1;
            }
            if !words.is_empty() && matches!(self.t.get(j), Some(Tok::Op(")"))) {
                if let Some((size, signed)) =
                    type_of(&words, pointer).or(Some((8, false)).filter(|_| pointer))
                {
                    self.pos = j + 1;
                    let e = self.unary()?;
                    return Some(Expr::Cast {
                        size,
                        signed,
                        e: Box::new(e),
                    });
                }
            }
        }
        self.primary()
    }

    fn pairs(&mut self) -> Option<Vec<(u64, String)>> {
        let mut v = Vec::new();
        while self.eat(",") {
            self.expect("{")?;
            let val = eval_const(&self.expr()?)?;
            self.expect(",")?;
            let Some(Tok::Str(s)) = self.peek().cloned() else {
                return None;
            };
            self.pos += 1;
            self.expect("}")?;
            v.push((val, s));
        }
        Some(v)
    }

    fn primary(&mut self) -> Option<Expr> {
        let t = self.peek()?.clone();
        self.pos += 1;
        match t {
            Tok::Num(n) => Some(Expr::Num(n)),
            Tok::Str(s) => {
                let mut s = s;
                while let Some(Tok::Str(more)) = self.peek() {
                    s.push_str(more);
                    self.pos += 1;
                }
                Some(Expr::Str(s))
            }
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Some(e)
            }
            Tok::Ident(id) if id == "REC" => {
                self.expect("->")?;
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return None;
                };
                self.pos += 1;
                let i = self.ev.fields.iter().position(|f| f.name == name)?;
                Some(Expr::Field(i))
            }
            Tok::Ident(id) => {
                self.expect("(")?;
                let e = match id.as_str() {
                    "__get_str" | "__get_dynamic_array" => {
                        let Some(Tok::Ident(name)) = self.peek().cloned() else {
                            return None;
                        };
                        self.pos += 1;
                        Expr::Field(self.ev.fields.iter().position(|f| f.name == name)?)
                    }
                    "__print_flags" => {
                        let v = self.expr()?;
                        self.expect(",")?;
                        let Some(Tok::Str(delim)) = self.peek().cloned() else {
                            return None;
                        };
                        self.pos += 1;
                        Expr::Flags(Box::new(v), delim, self.pairs()?)
                    }
                    "__print_symbolic" => {
                        let v = self.expr()?;
                        Expr::Symbolic(Box::new(v), self.pairs()?)
                    }
                    _ => return None,
                };
                self.expect(")")?;
                Some(e)
            }
            Tok::Op(_) => None,
        }
    }
}

fn eval_const(e: &Expr) -> Option<u64> {
    match e {
        Expr::Num(n) => Some(*n),
        Expr::Unary("-", a) => Some(eval_const(a)?.wrapping_neg()),
        Expr::Unary("~", a) => Some(!eval_const(a)?),
        Expr::Binary(op, a, b) => binop(op, eval_const(a)?, eval_const(b)?),
        Expr::Cast { e, .. } => eval_const(e),
        _ => None,
    }
}

fn binop(op: &str, a: u64, b: u64) -> Option<u64> {
    Some(match op {
        "+" => a.wrapping_add(b),
        "-" => a.wrapping_sub(b),
        "*" => a.wrapping_mul(b),
        "/" => a.checked_div(b)?,
        "%" => a.checked_rem(b)?,
        "<<" => a.wrapping_shl(b as u32),
        ">>" => a.wrapping_shr(b as u32),
        "&" => a & b,
        "|" => a | b,
        "^" => a ^ b,
        "&&" => (a != 0 && b != 0) as u64,
        "||" => (a != 0 || b != 0) as u64,
        "==" => (a == b) as u64,
        "!=" => (a != b) as u64,
        "<" => ((a as i64) < (b as i64)) as u64,
        "<=" => ((a as i64) <= (b as i64)) as u64,
        ">" => ((a as i64) > (b as i64)) as u64,
        ">=" => ((a as i64) >= (b as i64)) as u64,
        _ => return None,
    })
}

/// A value during evaluation.
#[derive(Debug, Clone)]
enum Val {
    Int(u64),
    Str(String),
}

impl Val {
    fn int(&self) -> u64 {
        match self {
            Val::Int(v) => *v,
            Val::Str(s) => !s.is_empty() as u64,
        }
    }
}

fn read_int(raw: &[u8], f: &Field, big: bool) -> u64 {
    let Some(b) = raw.get(f.offset..f.offset + f.size.min(8)) else {
        return 0;
    };
    let mut w = [0u8; 8];
    let v = if big {
        w[8 - b.len()..].copy_from_slice(b);
        u64::from_be_bytes(w)
    } else {
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    if f.signed && b.len() < 8 && !b.is_empty() {
        let shift = 64 - 8 * b.len() as u32;
        (((v << shift) as i64) >> shift) as u64
    } else {
        v
    }
}

fn read_str(raw: &[u8], f: &Field, big: bool) -> String {
    let bytes = if f.dynamic {
        let loc = read_int(
            raw,
            &Field {
                signed: false,
                ..f.clone()
            },
            big,
        ) as u32;
        let (off, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
        raw.get(off..off + len).unwrap_or(&[])
    } else {
        raw.get(f.offset..f.offset + f.size).unwrap_or(&[])
    };
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn eval(e: &Expr, ev: &EventFormat, raw: &[u8], big: bool) -> Val {
    match e {
        Expr::Num(n) => Val::Int(*n),
        Expr::Str(s) => Val::Str(s.clone()),
        Expr::Field(i) => {
            let f = &ev.fields[*i];
            if f.is_string() {
                Val::Str(read_str(raw, f, big))
            } else {
                Val::Int(read_int(raw, f, big))
            }
        }
        Expr::Cast { size, signed, e } => {
            let v = eval(e, ev, raw, big).int();
            let bits = *size as u32 * 8;
            Val::Int(if bits >= 64 {
                v
            } else if *signed {
                (((v << (64 - bits)) as i64) >> (64 - bits)) as u64
            } else {
                v & ((1u64 << bits) - 1)
            })
        }
        Expr::Unary(op, a) => {
            let v = eval(a, ev, raw, big).int();
            Val::Int(match *op {
                "-" => v.wrapping_neg(),
                "!" => (v == 0) as u64,
                _ => !v,
            })
        }
        Expr::Binary(op, a, b) => {
            let (x, y) = (eval(a, ev, raw, big).int(), eval(b, ev, raw, big).int());
            Val::Int(binop(op, x, y).unwrap_or(0))
        }
        Expr::Cond(c, a, b) => {
            if eval(c, ev, raw, big).int() != 0 {
                eval(a, ev, raw, big)
            } else {
                eval(b, ev, raw, big)
            }
        }
        Expr::Flags(v, delim, pairs) => {
            let mut val = eval(v, ev, raw, big).int();
            let mut out = String::new();
            for (fv, s) in pairs {
                if val == 0 && *fv == 0 {
                    out.push_str(s);
                    break;
                }
                if *fv != 0 && val & fv == *fv {
                    if !out.is_empty() {
                        out.push_str(delim);
                    }
                    out.push_str(s);
                    val &= !fv;
                }
            }
            if val != 0 {
                if !out.is_empty() {
                    out.push_str(delim);
                }
                let _ = write!(out, "0x{val:x}");
            }
            Val::Str(out)
        }
        Expr::Symbolic(v, pairs) => {
            let val = eval(v, ev, raw, big).int();
            Val::Str(match pairs.iter().find(|(fv, _)| *fv == val) {
                Some((_, s)) => s.clone(),
                None => format!("0x{val:x}"),
            })
        }
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Conv(Spec),
}

#[derive(Debug, Clone, Default)]
struct Spec {
    minus: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: Option<usize>,
    prec: Option<usize>,
    long: u8,
    half: u8,
    conv: char,
}

fn parse_format(f: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut it = f.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        if it.peek() == Some(&'%') {
            it.next();
            lit.push('%');
            continue;
        }
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        let mut s = Spec::default();
        while let Some(&c) = it.peek() {
            match c {
                '-' => s.minus = true,
                '0' => s.zero = true,
                '+' => s.plus = true,
                ' ' => s.space = true,
                '#' => s.alt = true,
                _ => break,
            }
            it.next();
        }
        let num = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n = None;
            while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0) * 10 + d as usize);
                it.next();
            }
            n
        };
        s.width = num(&mut it);
        if it.peek() == Some(&'.') {
            it.next();
            s.prec = Some(num(&mut it).unwrap_or(0));
        }
        while let Some(&c) = it.peek() {
            match c {
                'l' | 'L' | 'q' | 'j' | 'z' | 't' => s.long += 1,
                'h' => s.half += 1,
                _ => break,
            }
            it.next();
        }
        s.conv = it.next()?;
        if !"diuxXocsp".contains(s.conv) {
            return None;
        }
        if s.conv == 'p' {
            // %pS, %ps, %pF …: printed as the raw pointer here.
            while it.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                it.next();
            }
        }
        out.push(Piece::Conv(s));
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Some(out)
}

fn pad(out: &mut String, s: &str, spec: &Spec, numeric: bool) {
    let w = spec.width.unwrap_or(0);
    let n = s.chars().count();
    if n >= w {
        out.push_str(s);
    } else if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', w - n));
    } else if spec.zero && numeric && spec.prec.is_none() {
        let (sign, digits) = match s.strip_prefix(['-', '+']) {
            Some(d) => (&s[..1], d),
            None => ("", s),
        };
        let (pre, digits) = match digits.strip_prefix("0x") {
            Some(d) if spec.alt => ("0x", d),
            _ => ("", digits),
        };
        out.push_str(sign);
        out.push_str(pre);
        out.extend(std::iter::repeat_n('0', w - n));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', w - n));
        out.push_str(s);
    }
}

/// The common conversions (`%s`, `%d`, `%u`, `%x` with a width and `0`) without allocating.
fn fast_path(out: &mut String, spec: &Spec, v: &Val, u: u64, i: i64) -> bool {
    let w = spec.width.unwrap_or(0);
    let mut buf = [0u8; 24];
    let mut pos = buf.len();
    let (mut n, base, neg) = match (spec.conv, v) {
        ('s', Val::Str(s)) => {
            out.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(s.chars().count()),
            ));
            out.push_str(s);
            return true;
        }
        ('x', _) => (u, 16, false),
        ('u', _) => (u, 10, false),
        ('d' | 'i', _) => (i.unsigned_abs(), 10, i < 0),
        _ => return false,
    };
    loop {
        pos -= 1;
        buf[pos] = b"0123456789abcdef"[(n % base) as usize];
        n /= base;
        if n == 0 {
            break;
        }
    }
    let len = buf.len() - pos + neg as usize;
    let fill = w.saturating_sub(len);
    if spec.zero {
        if neg {
            out.push('-');
        }
        out.extend(std::iter::repeat_n('0', fill));
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        if neg {
            out.push('-');
        }
    }
    out.push_str(std::str::from_utf8(&buf[pos..]).unwrap_or(""));
    true
}

fn format_one(out: &mut String, spec: &Spec, v: &Val) {
    let raw = v.int();
    let bits = if spec.long > 0 || spec.conv == 'p' {
        64
    } else if spec.half >= 2 {
        8
    } else if spec.half == 1 {
        16
    } else {
        32
    };
    let u = if bits == 64 {
        raw
    } else {
        raw & ((1u64 << bits) - 1)
    };
    let i = if bits == 64 {
        raw as i64
    } else {
        ((u << (64 - bits)) as i64) >> (64 - bits)
    };
    let plain = spec.prec.is_none() && !spec.plus && !spec.space && !spec.alt && !spec.minus;
    if plain && fast_path(out, spec, v, u, i) {
        return;
    }
    let mut body = match spec.conv {
        's' => match v {
            Val::Str(s) => match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            Val::Int(n) => format!("{n}"),
        },
        'c' => char::from(u as u8).to_string(),
        'd' | 'i' => {
            let mut s = i.to_string();
            if i >= 0 && spec.plus {
                s.insert(0, '+');
            } else if i >= 0 && spec.space {
                s.insert(0, ' ');
            }
            s
        }
        'u' => u.to_string(),
        'o' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'p' => format!("0x{u:x}"),
        _ => String::new(),
    };
    if let (Some(p), true) = (spec.prec, "diuxXo".contains(spec.conv)) {
        let digits = body.trim_start_matches('-').len();
        if digits < p {
            let neg = body.starts_with('-');
            let d = body.trim_start_matches('-').to_string();
            body = format!(
                "{}{}{d}",
                if neg { "-" } else { "" },
                "0".repeat(p - digits)
            );
        }
    }
    if spec.alt && u != 0 && matches!(spec.conv, 'x' | 'X') {
        body.insert_str(0, if spec.conv == 'x' { "0x" } else { "0X" });
    }
    pad(out, &body, spec, spec.conv != 's' && spec.conv != 'c');
}

/// A parsed `print fmt`: the format pieces and one expression per conversion.
#[derive(Debug, Clone)]
struct Program {
    pieces: Vec<Piece>,
    args: Vec<Expr>,
}

fn compile(ev: &EventFormat) -> Option<Program> {
    let toks = lex(&ev.print_fmt)?;
    let mut p = Parser {
        t: &toks,
        pos: 0,
        ev,
    };
    let Some(Tok::Str(fmt)) = p.peek().cloned() else {
        return None;
    };
    p.pos += 1;
    let mut args = Vec::new();
    while p.eat(",") {
        args.push(p.expr()?);
    }
    if p.pos != toks.len() {
        return None;
    }
    let pieces = parse_format(&fmt)?;
    let convs = pieces
        .iter()
        .filter(|x| matches!(x, Piece::Conv(_)))
        .count();
    (convs == args.len()).then_some(Program { pieces, args })
}

/// Prints tracepoint samples' fields, compiling each event's format on first use.
#[derive(Debug)]
pub struct Printer<'a> {
    formats: &'a TraceFormats,
    programs: HashMap<u64, Option<Program>>,
}

impl<'a> Printer<'a> {
    /// A printer over a recording's formats.
    pub fn new(formats: &'a TraceFormats) -> Self {
        Printer {
            formats,
            programs: HashMap::new(),
        }
    }

    /// Appends the fields of tracepoint `id`'s sample `raw` to `out`.
    pub fn print(&mut self, id: u64, raw: &[u8], out: &mut String) {
        let Some(ev) = self.formats.by_id.get(&id) else {
            let _ = write!(out, "[unknown tracepoint {id}]");
            return;
        };
        let big = self.formats.big_endian;
        let prog = self.programs.entry(id).or_insert_with(|| compile(ev));
        match prog {
            Some(p) => {
                let mut args = p.args.iter();
                for piece in &p.pieces {
                    match piece {
                        Piece::Lit(s) => out.push_str(s),
                        Piece::Conv(spec) => {
                            if let Some(e) = args.next() {
                                format_one(out, spec, &eval(e, ev, raw, big));
                            }
                        }
                    }
                }
            }
            None => fields_fallback(ev, raw, big, out),
        }
    }
}

/// `name=value` for each field, when the print format is beyond this module.
fn fields_fallback(ev: &EventFormat, raw: &[u8], big: bool, out: &mut String) {
    for (i, f) in ev.own_fields().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if f.is_string() {
            let _ = write!(out, "{}={}", f.name, read_str(raw, f, big));
        } else if f.signed {
            let _ = write!(out, "{}={}", f.name, read_int(raw, f, big) as i64);
        } else {
            let _ = write!(out, "{}=0x{:x}", f.name, read_int(raw, f, big));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWITCH: &str = "name: sched_switch
ID: 318
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:int prev_prio;\toffset:28;\tsize:4;\tsigned:1;
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;
\tfield:char next_comm[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:pid_t next_pid;\toffset:56;\tsize:4;\tsigned:1;
\tfield:int next_prio;\toffset:60;\tsize:4;\tsigned:1;

print fmt: \"prev_comm=%s prev_pid=%d prev_prio=%d prev_state=%s%s ==> next_comm=%s next_pid=%d next_prio=%d\", REC->prev_comm, REC->prev_pid, REC->prev_prio, (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) - 1), \"|\", { 0x00000001, \"S\" }, { 0x00000002, \"D\" }, { 0x00000004, \"T\" }, { 0x00000008, \"t\" }, { 0x00000010, \"X\" }, { 0x00000020, \"Z\" }, { 0x00000040, \"P\" }, { 0x00000080, \"I\" }) : \"R\", REC->prev_state & (((0x00000000 | 0x00000001 | 0x00000002 | 0x00000004 | 0x00000008 | 0x00000010 | 0x00000020 | 0x00000040) + 1) << 1) ? \"+\" : \"\", REC->next_comm, REC->next_pid, REC->next_prio
";

    fn switch_raw(prev_state: i64) -> Vec<u8> {
        let mut r = vec![0u8; 64];
        r[8..14].copy_from_slice(b"ruperf");
        r[24..28].copy_from_slice(&32019i32.to_le_bytes());
        r[28..32].copy_from_slice(&120i32.to_le_bytes());
        r[32..40].copy_from_slice(&prev_state.to_le_bytes());
        r[40..51].copy_from_slice(b"migration/0");
        r[56..60].copy_from_slice(&18i32.to_le_bytes());
        r
    }

    #[test]
    fn sched_switch_prints_as_perf() {
        let mut t = TraceFormats::default();
        let ev = EventFormat::parse("sched", SWITCH).unwrap();
        t.by_id.insert(ev.id, ev);
        let mut p = Printer::new(&t);
        let mut out = String::new();
        p.print(318, &switch_raw(1), &mut out);
        assert_eq!(
            out,
            "prev_comm=ruperf prev_pid=32019 prev_prio=120 prev_state=S ==> next_comm=migration/0 next_pid=18 next_prio=0"
        );
        out.clear();
        p.print(318, &switch_raw(0x100), &mut out);
        assert!(out.contains("prev_state=R+ ==>"), "{out}");
    }

    #[test]
    fn printf_conversions() {
        let mut out = String::new();
        let spec = |s: &str| match &parse_format(s).unwrap()[0] {
            Piece::Conv(c) => c.clone(),
            _ => panic!(),
        };
        format_one(&mut out, &spec("%08lx"), &Val::Int(3));
        out.push('|');
        format_one(&mut out, &spec("%d"), &Val::Int(u64::MAX));
        out.push('|');
        format_one(&mut out, &spec("%-5s"), &Val::Str("ab".into()));
        out.push('|');
        format_one(&mut out, &spec("%#x"), &Val::Int(255));
        out.push('|');
        format_one(&mut out, &spec("%u"), &Val::Int(u64::MAX));
        assert_eq!(out, "00000003|-1|ab   |0xff|4294967295");
    }
}
