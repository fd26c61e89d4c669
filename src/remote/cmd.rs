//! A remote command as data: words joined by a few fixed shell operators.
//!
//! Every word is quoted when rendered, so a value from the config or the command line can
//! never become shell syntax. The only unquoted text in a rendered command is the operators
//! this module writes itself (`&&`, `|`, `>`, `>>`, `<`, `2>&1`).

use serde::Serialize;
use std::fmt;

/// One simple command: a program and its arguments, plus an optional redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Simple {
    words: Vec<String>,
    redirect: Option<Redirect>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Redirect {
    /// `> file`
    Write(String),
    /// `>> file`
    Append(String),
    /// `< file`
    Read(String),
    /// `2>&1`: errors go where the output goes (read in order, as one text).
    ErrToOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joiner {
    And,
    Pipe,
}

/// A shell command line built from quoted words: `a && b | c > file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    first: Simple,
    rest: Vec<(Joiner, Simple)>,
}

impl Cmd {
    /// Starts a command with its program name.
    pub fn new(program: impl Into<String>) -> Self {
        Cmd { first: Simple { words: vec![program.into()], redirect: None }, rest: Vec::new() }
    }

    fn last(&mut self) -> &mut Simple {
        match self.rest.last_mut() {
            Some((_, simple)) => simple,
            None => &mut self.first,
        }
    }

    /// Adds one argument (one word, however many spaces or quotes it holds).
    pub fn arg(mut self, word: impl Into<String>) -> Self {
        self.last().words.push(word.into());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.last().words.extend(words.into_iter().map(Into::into));
        self
    }

    /// `self && next`: run `next` only when `self` succeeded.
    pub fn and(mut self, next: Cmd) -> Self {
        self.rest.push((Joiner::And, next.first));
        self.rest.extend(next.rest);
        self
    }

    /// `self | next`.
    pub fn pipe(mut self, next: Cmd) -> Self {
        self.rest.push((Joiner::Pipe, next.first));
        self.rest.extend(next.rest);
        self
    }

    /// `> path` on the last simple command.
    pub fn write_to(mut self, path: impl Into<String>) -> Self {
        self.last().redirect = Some(Redirect::Write(path.into()));
        self
    }

    /// `>> path` on the last simple command.
    pub fn append_to(mut self, path: impl Into<String>) -> Self {
        self.last().redirect = Some(Redirect::Append(path.into()));
        self
    }

    /// `2>&1` on the last simple command.
    pub fn errors_to_output(mut self) -> Self {
        self.last().redirect = Some(Redirect::ErrToOut);
        self
    }

    /// `< path` on the last simple command.
    pub fn read_from(mut self, path: impl Into<String>) -> Self {
        self.last().redirect = Some(Redirect::Read(path.into()));
        self
    }

    /// Joins commands with `&&`; `None` when the list is empty.
    pub fn all(cmds: impl IntoIterator<Item = Cmd>) -> Option<Cmd> {
        cmds.into_iter().reduce(Cmd::and)
    }

    /// The program of the first simple command (for messages).
    pub fn program(&self) -> &str {
        &self.first.words[0]
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_simple(out, &self.first)?;
        for (op, simple) in &self.rest {
            out.write_str(match op {
                Joiner::And => " && ",
                Joiner::Pipe => " | ",
            })?;
            write_simple(out, simple)?;
        }
        Ok(())
    }
}

fn write_simple(out: &mut fmt::Formatter<'_>, simple: &Simple) -> fmt::Result {
    for (index, word) in simple.words.iter().enumerate() {
        if index > 0 {
            out.write_str(" ")?;
        }
        out.write_str(&quote(word))?;
    }
    match &simple.redirect {
        Some(Redirect::Write(path)) => write!(out, " > {}", quote(path)),
        Some(Redirect::Append(path)) => write!(out, " >> {}", quote(path)),
        Some(Redirect::Read(path)) => write!(out, " < {}", quote(path)),
        Some(Redirect::ErrToOut) => out.write_str(" 2>&1"),
        None => Ok(()),
    }
}

impl Serialize for Cmd {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Quotes one word for a POSIX shell. Words made only of characters that are never special
/// stay bare, for readability; everything else goes in single quotes, with `'` written as
/// `'\''`. Inside single quotes nothing is special (not `$`, `` ` ``, `\`, `;` or newline).
pub fn quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for character in word.chars() {
        if character == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(character);
        }
    }
    out.push('\'');
    out
}
