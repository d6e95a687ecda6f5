//! A small regular-expression engine for Questionnaire `regex` constraints and
//! FHIRPath `matches()`.
//!
//! Why our own: `regex-lite` cost about 25 kB of the browser's WebAssembly, and the
//! bundle has a size budget. This is the same code in the browser and on the server,
//! so both agree on every pattern. It is written for small code: one parse pass
//! straight to one program of instructions, no syntax tree, no formatting, no maps.
//!
//! Matching is linear: a Thompson-NFA simulation that keeps the set of live states
//! (no backtracking, no captures), so it costs at most `len(text) × program size`
//! however the pattern is written. Patterns come from clinic-loaded forms and the
//! texts from patients, so neither may make the server spin.
//!
//! Semantics follow `regex-lite`, which this replaced: an unanchored search, and
//! ASCII-only `\d \w \s \b` and `(?i)`. Supported:
//! - literals (any Unicode char), `.` (any char but `\n`; with `(?s)` any char),
//!   escaped ASCII punctuation (`\.`, `\-`, `\%` …), `\a \f \t \n \r \v`,
//!   `\xHH`, `\uHHHH`, `\UHHHHHHHH` and `\x{H…}` (also `\u{…}`, `\U{…}`);
//! - classes `[a-z]`, `[^…]`, `\d \w \s \D \W \S` in and out of brackets, POSIX
//!   `[[:alpha:]]` and `[[:^alpha:]]` inside brackets;
//! - `^ $ \A \z`, `\b \B \< \>` and `\b{start} \b{end} \b{start-half} \b{end-half}`;
//! - groups `( )`, `(?: )`, `(?P<n> )`, `(?<n> )` (captures are not reported), `|`;
//! - `* + ? {n} {n,} {n,m}` and their lazy `?` forms (laziness does not change
//!   whether a text matches);
//! - flags `i` (ASCII case), `m` (`^ $` at line ends), `s`, `U`, `u` (no-op), as
//!   `(?flags)` or `(?flags: )`, with `-` to turn them off.
//!
//! Refused with [`Error`]: malformed patterns, look-around, back-references,
//! Unicode classes (`\p{…}`), class set operations (`&& -- ~~`), nested classes,
//! the `x` (verbose) and `R` (CRLF) flags, patterns over [`MAX_PATTERN`] bytes,
//! groups nested deeper than [`MAX_DEPTH`], and programs over [`MAX_INSTS`]
//! instructions (`a{1000}{1000}`).

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN: usize = 4096;
/// The deepest nesting of groups accepted (the parser recurses once per group).
pub const MAX_DEPTH: u32 = 50;
/// The largest compiled program accepted; matching costs at most this per char.
pub const MAX_INSTS: usize = 10_000;

/// The pattern is malformed, uses syntax we do not support, or is too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error;

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Regex {
    prog: Vec<Inst>,
    sets: Vec<Set>,
}

/// One step of the program. Jumps are relative, so a compiled piece can be moved
/// or copied (for `{n,m}`) without relocation.
#[derive(Clone, Copy, Debug)]
enum Inst {
    Char(char),
    /// Index into `Regex::sets`.
    Set(u32),
    /// `.`; `true` when it also matches `\n` (`(?s)`).
    Any(bool),
    Look(Look),
    /// Continue at both the next instruction and this one plus the offset.
    Split(i32),
    Jmp(i32),
    Match,
}

/// A zero-width assertion about the chars either side of a position.
#[derive(Clone, Copy, Debug)]
enum Look {
    Start,
    End,
    LineStart,
    LineEnd,
    Word,
    NotWord,
    WordStart,
    WordEnd,
    WordStartHalf,
    WordEndHalf,
}

/// A character class: unsorted, possibly overlapping ranges of code points.
#[derive(Clone, Debug)]
struct Set {
    ranges: Vec<(u32, u32)>,
    neg: bool,
    /// 0: case-sensitive. Otherwise ASCII case-insensitive, except that a lowercase
    /// letter does not match through an uppercase letter at or above this code
    /// point. regex-lite folds a merged range that spans `Z..=a` only at its
    /// lowercase end; this reproduces that (`b'['` when no range does).
    fold: u8,
}

const FLAG_I: u8 = 1;
const FLAG_M: u8 = 2;
const FLAG_S: u8 = 4;

const DIGIT: &[(u8, u8)] = &[(b'0', b'9')];
const SPACE: &[(u8, u8)] = &[(b'\t', b'\r'), (b' ', b' ')];
const WORD: &[(u8, u8)] = &[(b'0', b'9'), (b'A', b'Z'), (b'_', b'_'), (b'a', b'z')];

/// What an escape stands for.
enum Atom {
    Char(char),
    /// A sorted ASCII table, negated when `true`.
    Table(&'static [(u8, u8)], bool),
    Look(Look),
}

impl Regex {
    /// Compiles `pattern`, or says it is malformed, unsupported or too large.
    pub fn new(pattern: &str) -> Result<Self, Error> {
        if pattern.len() > MAX_PATTERN {
            return Err(Error);
        }
        let mut c = Compiler {
            pat: pattern.chars().collect(),
            pos: 0,
            prog: Vec::new(),
            sets: Vec::new(),
            names: Vec::new(),
        };
        c.alt(0, 0)?;
        c.prog.push(Inst::Match);
        if c.prog.len() > MAX_INSTS {
            return Err(Error);
        }
        Ok(Self {
            prog: c.prog,
            sets: c.sets,
        })
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.is_match_within(text, u64::MAX).unwrap_or(false)
    }

    /// The most steps one match may cost: `len(text)` × [`Regex::cost_per_char`]
    /// (about 0.1 s here). A form's pattern and its answers' length bound are
    /// checked against it at import; an answer past it is refused, not matched.
    pub const STEP_BUDGET: u64 = 10_000_000;

    /// What matching costs per character of text, at most (in steps).
    pub fn cost_per_char(&self) -> u64 {
        self.prog.len() as u64
    }

    /// [`Regex::is_match`] in at most `budget` steps (a state visited or
    /// advanced is a step): `None` past it.
    pub fn is_match_within(&self, text: &str, budget: u64) -> Option<bool> {
        let mut spent = 0_u64;
        let prog = &self.prog;
        // `seen[pc] == step`: state pc is already in this position's set.
        let mut seen = vec![0usize; prog.len()];
        let mut todo: Vec<usize> = Vec::new();
        let mut live: Vec<usize> = Vec::new();
        let mut chars = text.chars();
        let (mut prev, mut cur) = (None, chars.next());
        let mut step = 0;
        loop {
            step += 1;
            // A thread starts at every position: an unanchored search.
            todo.push(0);
            live.clear();
            while let Some(pc) = todo.pop() {
                if seen[pc] == step {
                    continue;
                }
                seen[pc] = step;
                spent += 1;
                if spent > budget {
                    return None;
                }
                match prog[pc] {
                    Inst::Match => return Some(true),
                    Inst::Split(off) => {
                        todo.push(pc + 1);
                        todo.push(pc.wrapping_add_signed(off as isize));
                    }
                    Inst::Jmp(off) => todo.push(pc.wrapping_add_signed(off as isize)),
                    Inst::Look(k) => {
                        if look(k, prev, cur) {
                            todo.push(pc + 1);
                        }
                    }
                    _ => live.push(pc),
                }
            }
            let Some(c) = cur else { return Some(false) };
            for &pc in &live {
                let hit = match prog[pc] {
                    Inst::Char(x) => x == c,
                    Inst::Any(nl) => nl || c != '\n',
                    Inst::Set(i) => self.sets[i as usize].has(c),
                    _ => false,
                };
                if hit {
                    todo.push(pc + 1);
                }
            }
            prev = cur;
            cur = chars.next();
        }
    }
}

impl Set {
    fn has(&self, c: char) -> bool {
        let c = c as u32;
        let within = |c: u32| self.ranges.iter().any(|&(a, b)| a <= c && c <= b);
        let other = c ^ 0x20;
        let hit = within(c)
            || (self.fold != 0
                && matches!(c, 0x41..=0x5A | 0x61..=0x7A)
                && within(other)
                && (c < 0x61 || other < u32::from(self.fold)));
        hit != self.neg
    }
}

fn look(k: Look, prev: Option<char>, next: Option<char>) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let (before, after) = (word(prev), word(next));
    match k {
        Look::Start => prev.is_none(),
        Look::End => next.is_none(),
        Look::LineStart => prev.is_none_or(|c| c == '\n'),
        Look::LineEnd => next.is_none_or(|c| c == '\n'),
        Look::Word => before != after,
        Look::NotWord => before == after,
        Look::WordStart => !before && after,
        Look::WordEnd => before && !after,
        Look::WordStartHalf => !before,
        Look::WordEndHalf => !after,
    }
}

/// Appends a sorted ASCII table, or its complement over all code points.
fn push_table(ranges: &mut Vec<(u32, u32)>, table: &[(u8, u8)], neg: bool) {
    let mut lo = 0;
    for &(a, b) in table {
        let (a, b) = (u32::from(a), u32::from(b));
        if !neg {
            ranges.push((a, b));
        } else if a > lo {
            ranges.push((lo, a - 1));
        }
        lo = b + 1;
    }
    if neg {
        ranges.push((lo, 0x10FFFF));
    }
}

fn posix(name: &str) -> Option<&'static [(u8, u8)]> {
    Some(match name {
        "alnum" => &[(b'0', b'9'), (b'A', b'Z'), (b'a', b'z')],
        "alpha" => &[(b'A', b'Z'), (b'a', b'z')],
        "ascii" => &[(0, 0x7F)],
        "blank" => &[(b'\t', b'\t'), (b' ', b' ')],
        "cntrl" => &[(0, 0x1F), (0x7F, 0x7F)],
        "digit" => DIGIT,
        "graph" => &[(b'!', b'~')],
        "lower" => &[(b'a', b'z')],
        "print" => &[(b' ', b'~')],
        "punct" => &[(b'!', b'/'), (b':', b'@'), (b'[', b'`'), (b'{', b'~')],
        "space" => SPACE,
        "upper" => &[(b'A', b'Z')],
        "word" => WORD,
        "xdigit" => &[(b'0', b'9'), (b'A', b'F'), (b'a', b'f')],
        _ => return None,
    })
}

struct Compiler {
    pat: Vec<char>,
    pos: usize,
    prog: Vec<Inst>,
    sets: Vec<Set>,
    /// Group names seen, as ranges of `pat` (a repeated name is an error).
    names: Vec<(usize, usize)>,
}

impl Compiler {
    fn peek(&self) -> Option<char> {
        self.pat.get(self.pos).copied()
    }

    fn bump(&mut self) -> Result<char, Error> {
        let c = self.peek().ok_or(Error)?;
        self.pos += 1;
        Ok(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        self.pos += usize::from(hit);
        hit
    }

    fn set(&mut self, ranges: Vec<(u32, u32)>, neg: bool, fold: u8) {
        self.prog.push(Inst::Set(self.sets.len() as u32));
        self.sets.push(Set { ranges, neg, fold });
    }

    fn lit(&mut self, c: char, flags: u8) {
        if flags & FLAG_I != 0 && c.is_ascii_alphabetic() {
            let c = c as u32;
            self.set(vec![(c, c), (c ^ 0x20, c ^ 0x20)], false, 0);
        } else {
            self.prog.push(Inst::Char(c));
        }
    }

    /// Compiles alternatives up to an unconsumed `)` or the end of the pattern.
    fn alt(&mut self, mut flags: u8, depth: u32) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error);
        }
        // The `Jmp`s that end every alternative but the last, patched at the end.
        let mut exits = Vec::new();
        let mut branch = self.prog.len();
        // Where the last item of this alternative starts: what a quantifier repeats.
        let mut last = None;
        while let Some(c) = self.peek() {
            if c == ')' {
                if depth == 0 {
                    return Err(Error);
                }
                break;
            }
            self.pos += 1;
            let start = self.prog.len();
            match c {
                '|' => {
                    let len = (start - branch) as i32;
                    self.prog.insert(branch, Inst::Split(len + 2));
                    exits.push(self.prog.len());
                    self.prog.push(Inst::Jmp(0));
                    branch = self.prog.len();
                    last = None;
                    continue;
                }
                '?' | '*' | '+' | '{' => {
                    let at = last.ok_or(Error)?;
                    let (min, max) = match c {
                        '?' => (0, Some(1)),
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => self.counts()?,
                    };
                    self.eat('?');
                    self.repeat(at, min, max)?;
                    continue;
                }
                '(' => {
                    // A flag directive is no item: a quantifier after it repeats
                    // the item before, as in regex-lite.
                    if !self.group(&mut flags, depth)? {
                        continue;
                    }
                }
                '[' => self.class(flags)?,
                '.' => self.prog.push(Inst::Any(flags & FLAG_S != 0)),
                '^' | '$' => self.prog.push(Inst::Look(match (c, flags & FLAG_M != 0) {
                    ('^', false) => Look::Start,
                    ('^', true) => Look::LineStart,
                    (_, false) => Look::End,
                    (_, true) => Look::LineEnd,
                })),
                '\\' => match self.escape()? {
                    Atom::Char(c) => self.lit(c, flags),
                    Atom::Table(table, neg) => {
                        let mut ranges = Vec::new();
                        push_table(&mut ranges, table, neg);
                        self.set(ranges, false, 0);
                    }
                    Atom::Look(k) => self.prog.push(Inst::Look(k)),
                },
                c => self.lit(c, flags),
            }
            last = Some(start);
        }
        let end = self.prog.len();
        for j in exits {
            self.prog[j] = Inst::Jmp((end - j) as i32);
        }
        Ok(())
    }

    /// After `(`: a group (true) or a flag directive like `(?i)` (false), which
    /// changes `flags` until the end of the enclosing group.
    fn group(&mut self, flags: &mut u8, depth: u32) -> Result<bool, Error> {
        let mut inner = *flags;
        if self.eat('?') {
            let p = self.eat('P');
            if self.eat('<') {
                self.name()?;
            } else if p {
                return Err(Error);
            } else {
                let (mut seen, mut neg, mut dangling) = (0u8, false, false);
                loop {
                    let c = self.bump()?;
                    let bit = match c {
                        ':' | ')' if !dangling && (c == ':' || seen != 0) => break,
                        '-' if !neg => {
                            (neg, dangling) = (true, true);
                            continue;
                        }
                        'i' => FLAG_I,
                        'm' => FLAG_M,
                        's' => FLAG_S,
                        'U' => 8,
                        'u' => 16,
                        // Also `x` and `R`, which we do not support.
                        _ => return Err(Error),
                    };
                    if seen & bit != 0 {
                        return Err(Error);
                    }
                    seen |= bit;
                    dangling = false;
                    inner = if neg { inner & !bit } else { inner | bit };
                }
                if self.pat[self.pos - 1] == ')' {
                    *flags = inner;
                    return Ok(false);
                }
            }
        }
        self.alt(inner, depth + 1)?;
        if !self.eat(')') {
            return Err(Error);
        }
        Ok(true)
    }

    /// A group name after `<`, through `>`; the rules are regex-lite's.
    fn name(&mut self) -> Result<(), Error> {
        let start = self.pos;
        loop {
            let c = self.bump()?;
            if c == '>' {
                break;
            }
            let ok = c == '_'
                || if self.pos == start + 1 {
                    c.is_alphabetic()
                } else {
                    c.is_alphanumeric() || matches!(c, '.' | '[' | ']')
                };
            if !ok {
                return Err(Error);
            }
        }
        let end = self.pos - 1;
        let name = &self.pat[start..end];
        if name.is_empty() || self.names.iter().any(|&(a, b)| self.pat[a..b] == *name) {
            return Err(Error);
        }
        self.names.push((start, end));
        Ok(())
    }

    /// `{n}`, `{n,}` or `{n,m}` after the `{`.
    fn counts(&mut self) -> Result<(u32, Option<u32>), Error> {
        let min = self.decimal()?;
        let max = if !self.eat(',') {
            Some(min)
        } else if self.peek() == Some('}') {
            None
        } else {
            Some(self.decimal()?)
        };
        if !self.eat('}') || max.is_some_and(|max| max < min) {
            return Err(Error);
        }
        Ok((min, max))
    }

    /// A decimal number, with whitespace either side (as regex-lite allows).
    fn decimal(&mut self) -> Result<u32, Error> {
        let skip_space = |c: &mut Self| {
            while c.peek().is_some_and(char::is_whitespace) {
                c.pos += 1;
            }
        };
        skip_space(self);
        let start = self.pos;
        let mut n: u32 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(d))
                .ok_or(Error)?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(Error);
        }
        skip_space(self);
        Ok(n)
    }

    /// Repeats the program from `at` to the end `min` to `max` times (`None`: no
    /// upper bound).
    fn repeat(&mut self, at: usize, min: u32, max: Option<u32>) -> Result<(), Error> {
        let sub = self.prog.split_off(at);
        let n = sub.len();
        // An empty piece costs no instructions but still a loop turn per copy.
        let cost = n.max(1);
        let optional = match max {
            None => n + 2,
            Some(max) => ((max - min) as usize).saturating_mul(n + 1),
        };
        let size = cost.saturating_mul(min as usize).saturating_add(optional);
        if size.saturating_add(at) > MAX_INSTS {
            return Err(Error);
        }
        for _ in 0..min {
            self.prog.extend_from_slice(&sub);
        }
        let n = n as i32;
        match max {
            None if min == 0 => {
                self.prog.push(Inst::Split(n + 2));
                self.prog.extend_from_slice(&sub);
                self.prog.push(Inst::Jmp(-n - 1));
            }
            // Loop back into the last copy.
            None => self.prog.push(Inst::Split(-n)),
            Some(max) => {
                for _ in min..max {
                    self.prog.push(Inst::Split(n + 1));
                    self.prog.extend_from_slice(&sub);
                }
            }
        }
        Ok(())
    }

    /// An escape, after the `\`.
    fn escape(&mut self) -> Result<Atom, Error> {
        let c = self.bump()?;
        let table = |t, neg| Ok(Atom::Table(t, neg));
        let char = |c| Ok(Atom::Char(c));
        let look = |k| Ok(Atom::Look(k));
        match c {
            'd' | 'D' => table(DIGIT, c == 'D'),
            's' | 'S' => table(SPACE, c == 'S'),
            'w' | 'W' => table(WORD, c == 'W'),
            'x' | 'u' | 'U' => self.hex(c).map(Atom::Char),
            'a' => char('\x07'),
            'f' => char('\x0C'),
            't' => char('\t'),
            'n' => char('\n'),
            'r' => char('\r'),
            'v' => char('\x0B'),
            'A' => look(Look::Start),
            'z' => look(Look::End),
            'B' => look(Look::NotWord),
            '<' => look(Look::WordStart),
            '>' => look(Look::WordEnd),
            'b' => {
                let special = |c: &char| c.is_ascii_alphabetic() || *c == '-';
                // `\b{5}` is a repeated `\b`, `\b{start}` a special boundary.
                if self.peek() != Some('{') || !self.pat.get(self.pos + 1).is_some_and(special) {
                    return look(Look::Word);
                }
                let start = self.pos + 1;
                self.pos = start;
                while self.peek().is_some_and(|c| special(&c)) {
                    self.pos += 1;
                }
                let name: String = self.pat[start..self.pos].iter().collect();
                if !self.eat('}') {
                    return Err(Error);
                }
                look(match name.as_str() {
                    "start" => Look::WordStart,
                    "end" => Look::WordEnd,
                    "start-half" => Look::WordStartHalf,
                    "end-half" => Look::WordEndHalf,
                    _ => return Err(Error),
                })
            }
            // Any ASCII punctuation may be escaped; letters, digits (which would be
            // back-references) and other chars are reserved.
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => char(c),
            _ => Err(Error),
        }
    }

    /// `\xHH`, `\uHHHH`, `\UHHHHHHHH` or any of them with `{H…}`, after the letter.
    fn hex(&mut self, kind: char) -> Result<char, Error> {
        let braces = self.eat('{');
        let digits = match kind {
            'x' => 2,
            'u' => 4,
            _ => 8,
        };
        let (mut n, mut count) = (0u32, 0);
        loop {
            let c = self.bump()?;
            if braces && c == '}' {
                break;
            }
            let d = c.to_digit(16).ok_or(Error)?;
            n = n.checked_mul(16).ok_or(Error)? | d;
            count += 1;
            if !braces && count == digits {
                break;
            }
        }
        if count == 0 {
            return Err(Error);
        }
        char::from_u32(n).ok_or(Error)
    }

    /// A bracketed class, after the `[`.
    fn class(&mut self, flags: u8) -> Result<(), Error> {
        let fold = flags & FLAG_I != 0;
        let mut r = Vec::new();
        let neg = self.eat('^');
        while self.eat('-') {
            r.push((0x2D, 0x2D));
        }
        if r.is_empty() && self.eat(']') {
            r.push((0x5D, 0x5D));
        }
        // A char usable as a range end. Under (?i), regex-lite turns an escaped
        // letter into a two-letter class, which cannot end a range.
        let single = |a: &Atom, escaped: bool| match *a {
            Atom::Char(c) if !(escaped && fold && c.is_ascii_alphabetic()) => Some(c),
            _ => None,
        };
        loop {
            let c = self.bump()?;
            let next = self.peek();
            match c {
                ']' => break,
                '[' => {
                    if !self.eat(':') {
                        return Err(Error);
                    }
                    let neg = self.eat('^');
                    let start = self.pos;
                    while self.bump()? != ':' {}
                    let name: String = self.pat[start..self.pos - 1].iter().collect();
                    let table = posix(&name).ok_or(Error)?;
                    if !self.eat(']') {
                        return Err(Error);
                    }
                    push_table(&mut r, table, neg);
                    continue;
                }
                '&' | '-' | '~' if next == Some(c) => return Err(Error),
                _ => {}
            }
            let a = if c == '\\' {
                self.escape()?
            } else {
                Atom::Char(c)
            };
            let after = self.pat.get(self.pos + 1).copied();
            if self.peek() == Some('-') && !matches!(after, Some(']' | '-')) {
                self.pos += 1;
                let c2 = self.bump()?;
                let b = if c2 == '\\' {
                    self.escape()?
                } else {
                    Atom::Char(c2)
                };
                match (single(&a, c == '\\'), single(&b, c2 == '\\')) {
                    (Some(lo), Some(hi)) if lo <= hi => r.push((lo as u32, hi as u32)),
                    _ => return Err(Error),
                }
                continue;
            }
            match a {
                Atom::Char(ch) => {
                    let ch = ch as u32;
                    r.push((ch, ch));
                    if single(&a, c == '\\').is_none() {
                        r.push((ch ^ 0x20, ch ^ 0x20));
                    }
                }
                Atom::Table(table, neg) => push_table(&mut r, table, neg),
                Atom::Look(_) => return Err(Error),
            }
        }
        let within = |c: u32| r.iter().any(|&(a, b)| a <= c && c <= b);
        let fold = match fold {
            false => 0,
            // A merged range spans `Z..=a`: find where it starts.
            true if (0x5A..=0x61).all(within) => {
                let mut lo = 0x5A;
                while lo > 0 && within(lo - 1) {
                    lo -= 1;
                }
                lo as u8
            }
            true => b'[',
        };
        self.set(r, neg, fold);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        Regex::new(pattern)
            .unwrap_or_else(|_| panic!("{pattern:?} compiles"))
            .is_match(text)
    }

    fn lite(pattern: &str) -> Option<regex_lite::Regex> {
        regex_lite::Regex::new(pattern).ok()
    }

    /// A small deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }

        fn text(&mut self, alphabet: &[char], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    const PHONE: &str = r"^(\+\d{1,2}\s?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}$";
    /// From smartforms__QFormPopulation__qItemPopulationContextHomeAddress.json, as the
    /// regex it spells out (the FHIRPath quoting there is broken).
    const EMAIL: &str = r#"(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*|"(?:[\x01-\x08\x0b\x0c\x0e-\x1f\x21\x23-\x5b\x5d-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*")@(?:(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?|\[(?:(?:(2(5[0-5]|[0-4][0-9])|1[0-9][0-9]|[1-9]?[0-9]))\.){3}(?:(2(5[0-5]|[0-4][0-9])|1[0-9][0-9]|[1-9]?[0-9])|[a-z0-9-]*[a-z0-9]:(?:[\x01-\x08\x0b\x0c\x0e-\x1f\x21-\x5a\x53-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])+)\])"#;
    /// Canadian postcode, with a look-ahead: refused, as regex-lite refused it.
    const CA_POSTCODE: &str = r"^(?!.*[DFIOQU])[A-VXY][0-9][A-Z] ?[0-9][A-Z][0-9]$";

    #[test]
    fn patterns_match_as_the_table_says() {
        let cases: &[(&str, &str, bool)] = &[
            // The fixtures' patterns.
            ("^[0-9]{4}$", "3000", true),
            ("^[0-9]{4}$", "300", false),
            ("^[0-9]{4}$", "30000", false),
            ("^[0-9]{4}$", "３０００", false),
            (PHONE, "+1 (555) 123-4567", true),
            (PHONE, "555.123.4567", true),
            (PHONE, "5551234567", true),
            (PHONE, "+61 555 123 4567", true),
            (PHONE, "555-1234", false),
            (PHONE, "+123 555 123 4567", false),
            (EMAIL, "jo.bloggs@example.org", true),
            (EMAIL, "jo@[192.168.0.1]", true),
            (EMAIL, "\"jo.bloggs\"@example.org", true),
            (EMAIL, "\"jo bloggs\"@example.org", false),
            (EMAIL, "jo@", false),
            (EMAIL, "@example.org", false),
            // Everyday form patterns.
            (r"^\d{5}(-\d{4})?$", "12345-6789", true),
            (r"^\d{5}(-\d{4})?$", "12345-67", false),
            (
                "^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$",
                "SW1A 1AA",
                true,
            ),
            (
                "^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$",
                "SW1A 1A",
                false,
            ),
            (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "a@b.co", true),
            (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "a b@c.d", false),
            (
                r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$",
                "ann+x@mail.example.com",
                true,
            ),
            (r"^\+?[0-9 ()-]{7,20}$", "+44 (0)20 7946 0958", true),
            (r"^\+?[0-9 ()-]{7,20}$", "call me", false),
            (r"^\d{3}-\d{2}-\d{4}$", "078-05-1120", true),
            (
                r"^(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
                "2024-02-30",
                true,
            ),
            (
                r"^(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$",
                "2024-13-01",
                false,
            ),
            // Unanchored search, anchors and multi-line.
            ("b", "abc", true),
            ("^b", "abc", false),
            ("c$", "abc", true),
            ("c$", "abc\n", false),
            ("(?m)c$", "abc\nd", true),
            ("(?m)^d", "abc\nd", true),
            ("^d", "abc\nd", false),
            (r"\Aa", "ba", false),
            (r"a\z", "ba", true),
            ("", "", true),
            ("^$", "", true),
            ("^$", "x", false),
            // Alternation and groups.
            ("^(cat|dog)s?$", "dogs", true),
            ("^(cat|dog)s?$", "cow", false),
            ("^(?:a|)$", "", true),
            ("^(?P<year>\\d{4})-(?<m>\\d\\d)$", "2024-05", true),
            ("a|b|c", "xxc", true),
            // Counted repetition.
            ("^a{3}$", "aaa", true),
            ("^a{3}$", "aaaa", false),
            ("^a{2,}$", "a", false),
            ("^a{2,}$", "aaaaa", true),
            ("^a{2,3}$", "aaaa", false),
            ("^a{0}b$", "b", true),
            ("^(ab){2}$", "abab", true),
            ("^a{ 2 , 3 }$", "aaa", true),
            ("^a{2}?$", "aa", true),
            ("^a+?$", "aaa", true),
            // Classes.
            ("^[-a]+$", "-a-", true),
            ("^[]a]+$", "]a", true),
            ("^[^]a]$", "b", true),
            ("^[a-]$", "-", true),
            (r"^[\d_]+$", "1_2", true),
            (r"^[^\W\d]+$", "abc_", true),
            (r"^[^\W\d]+$", "ab1", false),
            ("^[[:alpha:]]+$", "Abc", true),
            ("^[[:^digit:]]+$", "a-b", true),
            ("^[[:^digit:]]+$", "a1", false),
            (r"^\S+$", "é€", true),
            (r"^\s$", "\u{a0}", false),
            (r"^\s$", "\x0B", true),
            (r"^\w$", "é", false),
            (r"^\d$", "٣", false),
            (r"^[\x41-\x43]+$", "ABC", true),
            (r"^\x{e9}\u00e9\U000000E9$", "ééé", true),
            (r"^\.\-\%\#$", ".-%#", true),
            // Dot.
            ("^.$", "é", true),
            ("^.$", "\n", false),
            ("(?s)^.$", "\n", true),
            ("^.{3}$", "日本語", true),
            // Word boundaries (ASCII words).
            (r"\bcat\b", "a cat.", true),
            (r"\bcat\b", "concat", false),
            (r"\Bcat", "concat", true),
            (r"\bé", "é", false),
            (r"\<cat\>", "cat", true),
            (r"\b{start}cat\b{end}", "cat", true),
            (r"a\b{end-half}", "ab", false),
            (r"\b{start-half}b", "ab", false),
            (r"^\b{2}a", "a", true),
            // Case-insensitivity is ASCII-only, as in regex-lite.
            ("(?i)^hello$", "HeLLo", true),
            ("(?i)^[a-c]+$", "AbC", true),
            ("(?i)^[^a]$", "A", false),
            ("(?i:a)b", "Ab", true),
            ("(?i:a)b", "AB", false),
            ("a(?i)b|c", "aB", true),
            ("a(?i)b|c", "C", true),
            ("(a(?i)b)c", "aBC", false),
            ("(?i)straße", "STRASSE", false),
            ("(?i)é", "É", false),
            ("(?i)^[Z-a]$", "z", false),
            ("(?i)^[Z-a]$", "A", true),
            ("(?i-i)", "", false),
            // Unicode text.
            ("^日本$", "日本", true),
            ("^[α-ω]+$", "λόγος", false),
            ("^[α-ω]+$", "λογος", true),
            ("^\\u{1F600}+$", "😀😀", true),
        ];
        for &(pattern, text, expected) in cases {
            let ours = Regex::new(pattern).map(|re| re.is_match(text));
            if pattern == "(?i-i)" {
                assert_eq!(ours, Err(Error), "{pattern:?}");
                continue;
            }
            assert_eq!(ours, Ok(expected), "{pattern:?} on {text:?}");
            assert_eq!(
                lite(pattern).map(|re| re.is_match(text)),
                Some(expected),
                "regex-lite"
            );
        }
    }

    #[test]
    fn fixture_patterns_compile_and_match_as_regex_lite() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/questionnaires"
        );
        let mut patterns = Vec::new();
        for entry in std::fs::read_dir(dir).expect("the fixture folder") {
            let path = entry.expect("a fixture").path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let text = std::fs::read_to_string(path).expect("a file");
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let mut stack = vec![&json];
            while let Some(v) = stack.pop() {
                match v {
                    serde_json::Value::Object(o) => {
                        let regex = "http://hl7.org/fhir/StructureDefinition/regex";
                        if o.get("url").and_then(|u| u.as_str()) == Some(regex) {
                            let s = o["valueString"].as_str().expect("a string").trim();
                            let s = s.strip_prefix("matches('").map_or(s, |s| &s[..s.len() - 2]);
                            patterns.push(s.to_owned());
                        }
                        stack.extend(o.values());
                    }
                    serde_json::Value::Array(a) => stack.extend(a),
                    serde_json::Value::String(s) => {
                        let mut rest = s.as_str();
                        while let Some(at) = rest.find(".matches('") {
                            rest = &rest[at + 10..];
                            let end = rest.find("')").expect("a closing quote");
                            patterns.push(rest[..end].to_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
        patterns.sort();
        patterns.dedup();
        assert!(patterns.len() >= 4, "{patterns:?}");
        let texts = ["3000", "+1 (555) 123-4567", "K1A 0B1", "a@b.org", "", "x"];
        for p in &patterns {
            let ours = Regex::new(p).ok();
            assert_eq!(ours.is_some(), lite(p).is_some(), "{p:?}");
            for t in texts {
                let lite = lite(p).map(|re| re.is_match(t));
                assert_eq!(
                    ours.as_ref().map(|re| re.is_match(t)),
                    lite,
                    "{p:?} on {t:?}"
                );
            }
        }
        for p in [PHONE, EMAIL] {
            assert!(
                patterns.iter().any(|f| f == p),
                "{p} is in a fixture: {patterns:#?}"
            );
        }
        assert!(patterns.iter().any(|f| f == CA_POSTCODE));
    }

    /// Patterns for the differential test, beside the ones in the table above.
    const DIFFERENTIAL: &[&str] = &[
        PHONE,
        EMAIL,
        "^[0-9]{4}$",
        r"^\d{5}(-\d{4})?$",
        "^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$",
        r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$",
        r"^\+?[0-9 ()-]{7,20}$",
        r"^(\d{3})[ -]?(\d{3})[ -]?(\d{3})$",
        r"^[A-Z][a-z]+(?:[ '-][A-Z][a-z]+)*$",
        "(?i)^[a-z]+$",
        "(?i)^[^a-z]+$",
        "(?i)^[Z-a]+$",
        r"(?i)^[Y-Z\[-a]+$",
        r"(?i)^[\W]+$",
        r"(?i)^[\x41-Z]+$",
        r"(?i)[\x61]",
        r"(?i)^[[:upper:]]+$",
        "(?i)AbC",
        "(?i)(?-i:a)b",
        "a(?i)b|c",
        "(a(?i)b)c",
        "(?m)^a$",
        "(?m)^$",
        "(?s).a.",
        "(?ms)^.$",
        "(?U)a+b",
        "(?u)a",
        ".",
        "^.$",
        "^..$",
        "a.c",
        "a*",
        "a+",
        "^a?$",
        "a*?b",
        "(a|b)*c",
        "(a|ab)(c|bcd)(d*)",
        "^(a+|b+)*$",
        "(?:a{2,3}){2}",
        "^a{0,}$",
        "^a{1,}$",
        "^a{0,2}b{1,2}$",
        "^(?:ab|a)(?:bc|c)$",
        "^(|a)+$",
        "(?:)*",
        "()+a",
        "x*y*z*",
        "^$",
        "$",
        "^",
        r"\b",
        r"\B",
        r"\ba",
        r"a\b",
        r"\Ba\B",
        r"\<a",
        r"a\>",
        r"\b{start}a",
        r"a\b{end}",
        r"\b{start-half}a",
        r"a\b{end-half}",
        r"\b{2}a",
        r"^\w+$",
        r"^\W+$",
        r"^\d+$",
        r"^\D+$",
        r"^\s+$",
        r"^\S+$",
        r"[\s\S]",
        r"^[\w\s]+$",
        r"^[^\w\s]+$",
        "[[:alnum:]]",
        "[[:punct:]]+",
        "[[:space:][:digit:]]",
        "[[:^alpha:]]",
        "^[[:xdigit:]]+$",
        "[[:word:]]",
        "[[:cntrl:]]",
        "[[:graph:]]",
        "[[:print:]]",
        "[[:blank:]]",
        "[[:lower:]]",
        "[[:ascii:]]+$",
        "[-]",
        "[a-]",
        "[-a-c]",
        "[]]",
        "[^]]",
        "[^-]",
        "[a-c-e]",
        r"[\]]",
        r"[\^a]",
        r"[\-]",
        r"^[é-ü]+$",
        r"\x41",
        r"\x{41}",
        r"\u0041",
        r"\U00000041",
        r"\u{1F600}",
        r"\n",
        r"\t",
        r"[\n\t]",
        r"\a\f\v\r",
        r"\.\*\+\?\(\)\[\]\{\}\|\^\$\#\&\-\~",
        r"\!\%\,\/\:\;\=\@\_\`\'\ ",
        "a{,}",
        "a{1}",
        "a{1,1}",
        "a{ 1 }",
        "a{1,2}?",
        "a**",
        "a*+",
        "a???",
        "}",
        "]",
        "a}",
        "(?P<n>a)|(?<m>b)",
        "(?<_a.b[1]>x)",
        "(?<é>x)",
        "é+",
        "日本",
        "\u{0}",
    ];

    #[test]
    fn matches_as_regex_lite_on_generated_texts() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let base: Vec<char> = "aAbBcCzZyY09_ -.@+()[]\n\t\r\u{b}éÉß€日😀"
            .chars()
            .collect();
        for &pattern in DIFFERENTIAL {
            let (ours, theirs) = (Regex::new(pattern).ok(), lite(pattern));
            assert_eq!(
                ours.is_some(),
                theirs.is_some(),
                "{pattern:?} compiles in both or neither"
            );
            let (Some(ours), Some(theirs)) = (ours, theirs) else {
                continue;
            };
            let mut alphabet = base.clone();
            alphabet.extend(pattern.chars().filter(|c| *c != '\\'));
            for _ in 0..300 {
                let text = rng.text(&alphabet, 12);
                assert_eq!(
                    ours.is_match(&text),
                    theirs.is_match(&text),
                    "{pattern:?} on {text:?}"
                );
            }
        }
    }

    /// Random token soup: most of it is malformed, and both engines must agree on
    /// which, and on what the rest matches.
    #[test]
    fn random_patterns_compile_and_match_as_regex_lite() {
        const TOKENS: &[&str] = &[
            "a",
            "b",
            "A",
            "z",
            "é",
            "_",
            " ",
            "-",
            ".",
            r"\d",
            r"\w",
            r"\s",
            r"\D",
            r"\W",
            r"\S",
            r"\b",
            r"\B",
            "^",
            "$",
            "|",
            "|",
            "(",
            "(",
            ")",
            ")",
            "(?:",
            "(?i)",
            "(?i:",
            "(?m)",
            "(?s)",
            "(?-i)",
            "(?i-s:",
            "*",
            "+",
            "?",
            "*?",
            "{2}",
            "{1,3}",
            "{2,}",
            "{0}",
            "{",
            "}",
            "[",
            "]",
            "[ab]",
            "[^a]",
            "[a-c]",
            "[Z-a]",
            r"[Y-Z\[-a]",
            "[[:alpha:]]",
            r"[\d_]",
            r"[^\W]",
            r"[\x41-\x5a]",
            "[-a]",
            "[]a]",
            r"\x41",
            r"\x{e9}",
            r"\.",
            r"\n",
            "\n",
            r"\<",
            r"\>",
            r"\b{start}",
            r"\b{end-half}",
            r"\A",
            r"\z",
            "(?<n>",
            "(?P<n>",
            r"\",
            r"\e",
            r"\1",
            "&&",
            "--",
            "~~",
            "[:",
            ":]",
        ];
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let alphabet: Vec<char> = "aAbBzZé_ 1-.\n[]".chars().collect();
        let (mut compiled, mut refused) = (0, 0);
        for _ in 0..6000 {
            let len = 1 + rng.below(8);
            let pattern: String = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
            let (ours, theirs) = (Regex::new(&pattern).ok(), lite(&pattern));
            assert_eq!(
                ours.is_some(),
                theirs.is_some(),
                "{pattern:?} compiles in both or neither"
            );
            let (Some(ours), Some(theirs)) = (ours, theirs) else {
                refused += 1;
                continue;
            };
            compiled += 1;
            for _ in 0..40 {
                let text = rng.text(&alphabet, 10);
                assert_eq!(
                    ours.is_match(&text),
                    theirs.is_match(&text),
                    "{pattern:?} on {text:?}"
                );
            }
        }
        assert!(
            compiled > 1000 && refused > 1000,
            "{compiled} compiled, {refused} refused"
        );
    }

    #[test]
    fn refuses_what_regex_lite_refuses() {
        let refused = [
            CA_POSTCODE,
            "(?=a)",
            "(?<=a)b",
            "(?<!a)b",
            r"(a)\1",
            r"\p{L}",
            r"\PL",
            r"\e",
            r"\é",
            r"\",
            "(",
            ")",
            "a)",
            "(a",
            "(?",
            "(?)",
            "(?-)",
            "(?i-)",
            "(?--i)",
            "(?ii)",
            "(?i-i)",
            "(?q)",
            "(?-:a)",
            "(?P=n)",
            "(?P<>a)",
            "(?<1a>a)",
            "(?<a-b>a)",
            "(?<n>a)(?<n>b)",
            "(?<n",
            "*",
            "+a",
            "a|*",
            "(*)",
            "(?i)*",
            "{1}",
            "a{",
            "a{1",
            "a{1,",
            "a{,2}",
            "a{2,1}",
            "a{1,2",
            "a{x}",
            "a{1 2}",
            "a{4294967296}",
            "[",
            "[]",
            "[^]",
            "[a",
            "[a-",
            "[z-a]",
            r"[a-\d]",
            r"[\d-z]",
            r"[\b]",
            r"[\A]",
            "[[a]]",
            "[[:alpha:]",
            "[[:alpah:]]",
            "[a&&b]",
            "[a--b]",
            "[a~~b]",
            r"(?i)[\x41-Z]",
            r"(?i)[a-\x7a]",
            r"\x4",
            r"\xG1",
            r"\x{}",
            r"\x{110000}",
            r"\x{D800}",
            r"\x{100000000}",
            r"\u12",
            r"\b{",
            r"\b{foo}",
            r"\b{start",
            "a{1000}{1000}",
        ];
        for pattern in refused {
            assert!(lite(pattern).is_none(), "regex-lite refuses {pattern:?}");
            assert_eq!(Regex::new(pattern).map(|_| ()), Err(Error), "{pattern:?}");
        }
    }

    /// Where we differ from regex-lite on purpose: flags we do not implement, and
    /// limits counted differently. Each row is (pattern, ours compiles, regex-lite compiles).
    #[test]
    fn deliberate_differences_from_regex_lite() {
        let nested = format!("{}a{}", "(a".repeat(40), ")".repeat(40));
        let stars = format!("a{}", "*".repeat(60));
        let differences: &[(&str, bool, bool)] = &[
            // Verbose and CRLF modes are refused rather than half-implemented.
            ("(?x)a b", false, true),
            ("(?-x)a", false, true),
            ("(?R)a", false, true),
            // regex-lite limits the depth of its syntax tree (about 50, with a level
            // per group, concatenation and quantifier); we limit group nesting (50)
            // and the program size (10,000 instructions).
            (&nested, true, false),
            (&stars, true, false),
            ("a{10001}", false, true),
            ("[a-z]{100}{101}", false, true),
        ];
        for &(pattern, ours, theirs) in differences {
            assert_eq!(Regex::new(pattern).is_ok(), ours, "ours on {pattern:?}");
            assert_eq!(lite(pattern).is_some(), theirs, "regex-lite on {pattern:?}");
        }
        assert!(matches(&nested, &"a".repeat(41)));
    }

    #[test]
    fn a_match_past_its_step_budget_is_refused_not_finished() {
        // Issue 21: `[a-z]{0,2000}Q` over 1 MB took 22 s.
        let re = Regex::new("[a-z]{0,2000}Q").unwrap();
        assert!(re.cost_per_char() > 2000);
        let long = "a".repeat(100_000);
        assert_eq!(re.is_match_within(&long, Regex::STEP_BUDGET), None);
        assert_eq!(re.is_match_within("abcQ", Regex::STEP_BUDGET), Some(true));
        assert_eq!(re.is_match_within("abc", Regex::STEP_BUDGET), Some(false));
        assert!(!re.is_match("abc"));
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        let long = "a".repeat(50_000);
        assert!(!matches("(a+)+$b", &long));
        assert!(matches("(a+)+$", &long));
        assert!(!matches("^(a+)+$", &format!("{long}!")));
        assert!(!matches("(a|aa)*b", &long));
        assert!(!matches("(.*){20}x", &long));
        assert!(!matches("^(a|a?)+$", &format!("{long}b")));
        assert!(!matches("(x+x+)+y", &"x".repeat(50_000)));
        assert!(matches("(?:a*)*b|a", &long));
        assert!(!matches("(?:a*)*b", &long));
        assert!(!matches(
            r"^(\w+\s?)*$",
            &format!("{} !", "word ".repeat(10_000))
        ));
    }

    #[test]
    fn oversized_patterns_are_refused_without_overflowing_the_stack() {
        let deep = format!("{}a{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(Regex::new(&deep).map(|_| ()), Err(Error));
        let deep_but_short = format!("{}{}", "(".repeat(2_000), ")".repeat(2_000));
        assert_eq!(Regex::new(&deep_but_short).map(|_| ()), Err(Error));
        let just_deep_enough = format!("{}a{}", "(".repeat(50), ")".repeat(50));
        assert!(matches(&just_deep_enough, "a"));
        let too_deep = format!("{}a{}", "(?:".repeat(51), ")".repeat(51));
        assert_eq!(Regex::new(&too_deep).map(|_| ()), Err(Error));
        for huge in [
            "a{1000}{1000}",
            "(?:){4294967295}",
            "a{4294967295}",
            "(a{100}){100,}",
        ] {
            assert_eq!(Regex::new(huge).map(|_| ()), Err(Error), "{huge}");
        }
        assert_eq!(
            Regex::new(&"a".repeat(MAX_PATTERN + 1)).map(|_| ()),
            Err(Error)
        );
        assert!(matches(&"a".repeat(MAX_PATTERN), &"a".repeat(MAX_PATTERN)));
        assert!(matches("a{9000}", &"a".repeat(9000)));
        // Many stacked quantifiers: no recursion, so no limit but the program size.
        assert!(matches(&format!("a{}", "*".repeat(1000)), ""));
    }
}
