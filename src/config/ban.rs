//! Varnish ban expressions (`[[http_cache]] kind = "varnish"`, `bans`): their words, and
//! what cannot reach Varnish as written.
//!
//! A ban travels `varnishadm` → the manager process → the cache process. The manager parses
//! the CLI line (double quotes, `\\` escapes), then re-sends each argument to the cache
//! process escaped but never quoted (Varnish 7.1, `mcf_askchild`): `"` and `\\` arrive as
//! written, but an argument is split again at every blank. So a blank inside a regular
//! expression (`~`, `!~`) is sent as `\x20` (`\t` for a tab), which PCRE reads as the same
//! character, and a blank inside an `==`/`!=` value is refused.

/// Splits a ban expression into its words (`req.url ~ "^/a b"` → `req.url`, `~`, `^/a b`):
/// inside double quotes, `\"` and `\\` are escapes, and any other backslash is kept (it
/// belongs to the regular expression: `"\.html$"`). `balancer::cli_line` quotes them again.
pub fn words(expr: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_quotes = false;
    let mut started = false;
    let mut chars = expr.chars();
    while let Some(character) = chars.next() {
        match character {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            // `\"` and `\\` are escapes; any other backslash is the regular expression's own.
            '\\' if in_quotes => match chars.clone().next() {
                Some(next @ ('"' | '\\')) => {
                    word.push(next);
                    chars.next();
                }
                _ => word.push('\\'),
            },
            blank if blank.is_whitespace() && !in_quotes => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            other => {
                word.push(other);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// Why `expr` cannot be sent as written, if it cannot: a control character (a newline would
/// end the CLI command and start another), a `"` left open, not `FIELD OPERATOR ARGUMENT`
/// joined by `&&`, or a blank in an `==`/`!=` value.
pub fn problem(expr: &str) -> Option<String> {
    if let Some(bad) = expr.chars().find(|c| c.is_control()) {
        return Some(format!(
            "ban expression `{}` holds a control character ({bad:?}): the Varnish CLI would read a second command",
            expr.escape_debug()
        ));
    }
    let (mut open, mut escaped) = (false, false);
    for character in expr.chars() {
        if escaped {
            escaped = false;
        } else if character == '\\' && open {
            escaped = true;
        } else if character == '"' {
            open = !open;
        }
    }
    if open {
        return Some(format!("ban expression `{expr}` leaves a `\"` open"));
    }
    let words = words(expr);
    let joined = words.len() % 4 == 3 && words.iter().skip(3).step_by(4).all(|word| word == "&&");
    if !joined {
        return Some(format!("ban expression `{expr}` is not `FIELD OPERATOR ARGUMENT`, with `&&` between conditions"));
    }
    for test in words.chunks(4) {
        if matches!(test[1].as_str(), "==" | "!=") && test[2].chars().any(char::is_whitespace) {
            return Some(format!(
                "ban expression `{expr}`: Varnish splits `{}` at its blanks before comparing; match it with \
                 a regular expression instead (`{} ~ ...`, anchored with `^` and `$`)",
                test[2], test[0]
            ));
        }
    }
    None
}

/// The words of `expr` as the cache process must receive them: blanks in regular
/// expressions written as PCRE escapes (see the module docs).
pub fn words_for_varnish(expr: &str) -> Vec<String> {
    let mut words = words(expr);
    for index in (2..words.len()).step_by(4) {
        if matches!(words[index - 1].as_str(), "~" | "!~") {
            words[index] = words[index].replace(' ', "\\x20").replace('\t', "\\t");
        }
    }
    words
}

#[cfg(test)]
mod tests {
    #[test]
    fn what_cannot_be_sent() {
        for expr in [
            "req.url ~ \"^/a\"\nban obj.status != 0",
            "req.url ~ \"^/a",
            "req.url ~",
            "req.url ~ ^/a obj.status != 0",
            "obj.http.x == \"a b\"",
        ] {
            assert!(super::problem(expr).is_some(), "{expr:?}");
        }
        for expr in ["req.url ~ \"^/a b\" && obj.status != 0", "obj.http.x == \"say\\\"hi\\\"\"", "obj.status != 0"] {
            assert_eq!(super::problem(expr), None, "{expr:?}");
        }
        assert_eq!(super::words_for_varnish("req.url ~ \"^/a b\""), ["req.url", "~", "^/a\\x20b"]);
    }
}
