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
    /// The word that is shell code run by `sh -c` (a hook, a user's command): when it holds
    /// a secret it travels in the environment and is `eval`ed, never as an argument.
    script: Option<usize>,
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
        Cmd { first: Simple { words: vec![program.into()], redirect: None, script: None }, rest: Vec::new() }
    }

    /// `sh -c SCRIPT`: user shell code (see [`Cmd::shell`]).
    pub fn script(script: impl Into<String>) -> Self {
        let words = vec!["sh".to_string(), "-c".to_string(), script.into()];
        Cmd { first: Simple { words, redirect: None, script: Some(2) }, rest: Vec::new() }
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

    /// Adds `sh -c SCRIPT`: user shell code, run by a shell of its own.
    pub fn shell(mut self, script: impl Into<String>) -> Self {
        let simple = self.last();
        simple.words.extend(["sh".to_string(), "-c".to_string()]);
        simple.script = Some(simple.words.len());
        simple.words.push(script.into());
        self
    }

    /// This command under `timeout` where it runs: past `limit` it is ended (TERM, then KILL
    /// 5 s later) with every process it started, so it cannot take effect after deploy gave
    /// up on it. The command goes whole into `sh -c` (its words stay quoted as they are).
    pub fn limited(self, limit: std::time::Duration) -> Cmd {
        let seconds = format!("{}s", limit.as_secs().max(1));
        Cmd::new("timeout").args(["-k", "5s", seconds.as_str()]).shell(self.to_string())
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

/// A command as it travels to the host: a line that holds no secret, and the private values
/// it reads from its environment (`DEPLOY_PRIVATE_N`), which the transport sends on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    pub line: String,
    pub private: Vec<(String, String)>,
}

impl Cmd {
    /// The command with every word that holds a secret replaced by a reference to a private
    /// environment variable: `"$DEPLOY_PRIVATE_1"` for an argument, and `eval` of it for shell
    /// code, so neither the line nor any process's arguments carry the value. A command that
    /// runs shell code also gets `exports`, the variables that code reads (`${VAR}`).
    pub fn wire(&self, secrets: &crate::secrets::Secrets, exports: &[(String, String)]) -> Wire {
        let runs_code = std::iter::once(&self.first)
            .chain(self.rest.iter().map(|(_, simple)| simple))
            .any(|simple| simple.script.is_some());
        let mut private: Vec<(String, String)> = if runs_code { exports.to_vec() } else { Vec::new() };
        let mut numbered = 0;
        let mut line = String::new();
        let mut word_for = |word: &str, script: bool| -> String {
            if !secrets.found_in(word) {
                return quote(word);
            }
            numbered += 1;
            let name = format!("DEPLOY_PRIVATE_{numbered}");
            private.push((name.clone(), word.to_string()));
            if script { quote(&format!("eval \"${name}\"")) } else { format!("\"${name}\"") }
        };
        for (index, simple) in
            std::iter::once(&self.first).chain(self.rest.iter().map(|(_, simple)| simple)).enumerate()
        {
            if index > 0 {
                line.push_str(match self.rest[index - 1].0 {
                    Joiner::And => " && ",
                    Joiner::Pipe => " | ",
                });
            }
            let words: Vec<String> =
                simple.words.iter().enumerate().map(|(at, word)| word_for(word, simple.script == Some(at))).collect();
            line.push_str(&words.join(" "));
            match &simple.redirect {
                Some(Redirect::Write(path)) => line.push_str(&format!(" > {}", word_for(path, false))),
                Some(Redirect::Append(path)) => line.push_str(&format!(" >> {}", word_for(path, false))),
                Some(Redirect::Read(path)) => line.push_str(&format!(" < {}", word_for(path, false))),
                Some(Redirect::ErrToOut) => line.push_str(" 2>&1"),
                None => {}
            }
        }
        Wire { line, private }
    }
}

impl Wire {
    /// What the host runs when there are private values: read the assignments and the line
    /// from stdin (`bytes` of it, so an artifact can follow) and `eval` them in this shell,
    /// which has no secret in its arguments. `None` when the line can go as it is.
    pub fn preamble(&self) -> Option<(String, Vec<u8>)> {
        if self.private.is_empty() {
            return None;
        }
        let mut script = String::new();
        for (name, value) in &self.private {
            script.push_str(&format!("{name}={}; export {name}\n", quote(value)));
        }
        script.push_str(&self.line);
        script.push('\n');
        let line = format!("eval \"$(head -c {})\"", script.len());
        Some((line, script.into_bytes()))
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
