//! Located config errors and how they are shown.

use super::source::{Loc, Sources};
use std::fmt;

/// One problem in the config: where, which key, what was expected, and the fix if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File as given (e.g. `Deploy.toml` or `recipe symfony`).
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// Key path, e.g. `stages.production.hosts[1].roles`.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
    /// The source line, for the excerpt under the message.
    pub excerpt: String,
    /// Width of the underline (at least 1).
    pub width: usize,
}

impl ConfigError {
    pub fn at(sources: &Sources, loc: &Loc, key: &str, message: String, hint: Option<String>) -> Self {
        let (line, col) = sources.line_col(loc);
        let excerpt = sources.line_text(loc).to_string();
        let rest = excerpt.chars().count().saturating_sub(col - 1);
        let text = sources.text(loc.src);
        let spanned = text.get(loc.span.clone()).map(|s| s.lines().next().unwrap_or("").chars().count()).unwrap_or(1);
        ConfigError {
            file: sources.name(loc.src).to_string(),
            line,
            col,
            key: key.to_string(),
            message,
            hint,
            excerpt,
            width: spanned.clamp(1, rest.max(1)),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            writeln!(f, "error: {}", self.message)?;
        } else {
            writeln!(f, "error: {}: {}", self.key, self.message)?;
        }
        let n = self.line.to_string();
        let pad = " ".repeat(n.len());
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.col)?;
        if !self.excerpt.is_empty() {
            writeln!(f, "{pad} |")?;
            writeln!(f, "{n} | {}", self.excerpt)?;
            let lead: String =
                self.excerpt.chars().take(self.col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            writeln!(f, "{pad} | {lead}{}", "^".repeat(self.width))?;
        }
        if let Some(h) = &self.hint {
            writeln!(f, "{pad} = hint: {h}")?;
        }
        Ok(())
    }
}

/// All the problems found in one config, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        let n = self.0.len();
        if n > 1 {
            writeln!(f, "\n{n} problems in the config; nothing was changed on any host.")?;
        }
        Ok(())
    }
}

/// Closest candidate by edit distance, if close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| {
            let c = c.to_ascii_lowercase();
            *d <= (c.len().max(w.len()) / 3).max(1)
                || (w.len() >= 3 && c.starts_with(&w))
                || (c.len() >= 3 && w.starts_with(&c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_words_only() {
        let keys = ["keep_releases", "name", "path", "recipe"];
        assert_eq!(did_you_mean("keep_release", keys), Some("keep_releases"));
        assert_eq!(did_you_mean("recpie", keys), Some("recipe"));
        assert_eq!(did_you_mean("pth", keys), Some("path"));
        assert_eq!(did_you_mean("banana", keys), None);
    }
}
