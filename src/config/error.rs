//! Located config errors: where, which key, what, and the fix if known. `crate::error`
//! renders them with every other error.

use super::source::{Loc, Sources};

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
    /// The error with every secret in its words shown as its `${VAR}` (the excerpt is the
    /// file's own text, which names the variable).
    pub fn redacted(self, secrets: &super::Secrets) -> ConfigError {
        ConfigError {
            message: secrets.redact(&self.message),
            hint: self.hint.map(|hint| secrets.redact(&hint)),
            ..self
        }
    }

    pub fn at(sources: &Sources, loc: &Loc, key: &str, message: String, hint: Option<String>) -> Self {
        let (line, col) = sources.line_col(loc);
        let excerpt = sources.line_text(loc).to_string();
        let rest = excerpt.chars().count().saturating_sub(col - 1);
        let text = sources.text(loc.src);
        let spanned =
            text.get(loc.span.clone()).map(|span| span.lines().next().unwrap_or("").chars().count()).unwrap_or(1);
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

/// All the problems found in one config, in file order (shown by `crate::error`'s renderer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// Closest candidate by edit distance, if close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (distance(&word, &candidate.to_ascii_lowercase()), candidate))
        .filter(|(edits, candidate)| {
            let candidate = candidate.to_ascii_lowercase();
            *edits <= (candidate.len().max(word.len()) / 3).max(1)
                || (word.len() >= 3 && candidate.starts_with(&word))
                || (candidate.len() >= 3 && word.starts_with(&candidate))
        })
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps).
fn distance(from: &str, to: &str) -> usize {
    let from: Vec<char> = from.chars().collect();
    let to: Vec<char> = to.chars().collect();
    // cost[i][j]: edits from the first i characters of `from` to the first j of `to`.
    let mut cost = vec![vec![0usize; to.len() + 1]; from.len() + 1];
    for (row_index, row) in cost.iter_mut().enumerate() {
        row[0] = row_index;
    }
    for (column, cell) in cost[0].iter_mut().enumerate() {
        *cell = column;
    }
    for row in 1..=from.len() {
        for col in 1..=to.len() {
            let change = usize::from(from[row - 1] != to[col - 1]);
            cost[row][col] = (cost[row - 1][col] + 1).min(cost[row][col - 1] + 1).min(cost[row - 1][col - 1] + change);
            if row > 1 && col > 1 && from[row - 1] == to[col - 2] && from[row - 2] == to[col - 1] {
                cost[row][col] = cost[row][col].min(cost[row - 2][col - 2] + 1);
            }
        }
    }
    cost[from.len()][to.len()]
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
