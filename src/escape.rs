//! The one step by which a string from a model (tensor names, file names, metadata, config values)
//! or from the user's paths reaches a generated file: Rust source, Markdown, a shell line in a
//! workflow, HTML (`check --report`), Graphviz DOT (`inspect --graph`). A model is data; whatever
//! it holds, what comes out of here is a literal, a comment that cannot be closed, text without
//! markup, or a shell word — never code.
//!
//! Templates ([`crate::scaffold`]) get this through minijinja's auto-escaping: every string a
//! template prints is escaped for the kind of file being rendered unless the code that built the
//! context marked it as code of ours (the scaffold's `code`). So a template that forgets gets a
//! quoted literal, not an injection. Generated text written without templates (`emit`, reports,
//! graph pictures) calls these functions.

/// A Rust string literal, quotes included: `"y\"); …"`. Rust's own `Debug` escaping produces
/// valid literal syntax for every string (quotes, backslashes, control and non-printable
/// characters escaped).
pub fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

/// Text for a `//` or `///` comment: the string as a literal's inside, so that a newline, a
/// carriage return or any other control character cannot end the comment.
pub fn rust_comment(s: &str) -> String {
    s.escape_debug().to_string()
}

/// The characters that mean something inside a line of Markdown (emphasis, code, links, HTML,
/// entities, tables, strikethrough, headings), and the backslash that escapes them.
const MD_ACTIVE: &str = "\\`*_[]<>&!|~#";

/// Plain Markdown text for the inside of a line: every character that could start emphasis,
/// code, a link, HTML, an entity or a table cell backslash-escaped, control characters shown
/// escaped (no line breaks), so that the text renders as it is.
pub fn md_text(s: &str) -> String {
    fn push(out: &mut String, c: char) {
        if MD_ACTIVE.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            // Shown as its escape (`\n`), each character of which is escaped in turn.
            c.escape_default().for_each(|e| push(&mut out, e));
        } else {
            push(&mut out, c);
        }
    }
    out
}

/// Text for HTML, in an element or a quoted attribute: `&`, `<`, `>`, both quotes as entities,
/// control characters other than tab and newline shown escaped.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// A Graphviz DOT string, quotes included: backslashes and quotes escaped, a line break as DOT's
/// `\n`, other control characters dropped.
pub fn dot_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Markdown code span (backticks included): fenced by more backticks than the longest run
/// inside, on one line.
pub fn md_code(s: &str) -> String {
    let one_line: String = s
        .chars()
        .flat_map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    let longest = one_line
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if one_line.starts_with('`') || one_line.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{one_line}{pad}{fence}")
}

/// Characters a shell word may carry as they are: no quoting, globbing, expansion, comment or
/// YAML meaning (no space, `:`, `#`, `$`, quotes, braces).
fn shell_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_./=,+@%-".contains(c)
}

/// One bash word on one line: as it is when every character is plain, otherwise bash's `$'…'`
/// quoting with every other byte as `\xHH`. The result never holds a space, a newline, a quote
/// of its own, `$` followed by anything but `'`, or `${{` (GitHub Actions expands that in `run:`
/// lines before the shell sees them), so it is also safe inside a plain YAML scalar.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(shell_plain) {
        return s.to_string();
    }
    let mut out = String::from("$'");
    for c in s.chars() {
        if shell_plain(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push('\'');
    out
}

/// A file name that is safe in every generated context as it is (shell, YAML, Markdown, a Rust
/// module name for code generators that derive one from it): ASCII letters, digits, `.`, `_`,
/// `-`, not starting with `.` or `-`. Other characters become `_`. A name that is already safe
/// is returned unchanged.
pub fn file_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(['.', '-']) || out.is_empty() {
        out.insert(0, 'm');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "y\"); std::fs::write(\"PWNED\", \"x\").unwrap(); println!(\"",
        "a\nfn evil() {}",
        "back\\slash",
        "{} */ /* ${{ secrets.TOKEN }} `rm -rf /`",
        "$(touch pwned); 'quote' # comment: yes",
        "naïve – ß 名前\u{2028}x\r",
        "",
    ];

    #[test]
    fn dot_strings_stay_one_string() {
        for s in HOSTILE {
            let d = dot_str(s);
            assert!(d.starts_with('"') && d.ends_with('"') && d.len() >= 2);
            let inner = &d[1..d.len() - 1];
            // No quote ends the string early: every quote is escaped, every backslash paired.
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                assert!(c != '"' && !c.is_control(), "{d}");
                if c == '\\' {
                    assert!(matches!(chars.next(), Some('\\' | '"' | 'n')), "{d}");
                }
            }
        }
        assert_eq!(dot_str("a\"b\nc"), "\"a\\\"b\\nc\"");
    }

    #[test]
    fn html_text_holds_no_markup() {
        let mut all: Vec<&str> = HOSTILE.to_vec();
        all.push("<script>alert(1)</script><img src=x onerror='y'>&amp;");
        for s in all {
            let h = html(s);
            assert!(!h.contains(['<', '>', '"', '\'']), "{h}");
            // Every `&` starts one of the entities written here.
            for (i, _) in h.match_indices('&') {
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                        .iter()
                        .any(|e| h[i..].starts_with(e)),
                    "{h}"
                );
            }
        }
        assert_eq!(html("a<b & 'c'"), "a&lt;b &amp; &#39;c&#39;");
    }

    #[test]
    fn rust_literals_round_trip() {
        for s in HOSTILE {
            let lit = rust_str(s);
            assert!(lit.starts_with('"') && lit.ends_with('"'));
            assert!(!lit.contains('\n') && !lit.contains('\r'));
            // Unescape the few forms Debug produces and get the string back.
            let inner = &lit[1..lit.len() - 1];
            let mut back = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    back.push(c);
                    continue;
                }
                match chars.next().unwrap() {
                    'n' => back.push('\n'),
                    'r' => back.push('\r'),
                    't' => back.push('\t'),
                    '0' => back.push('\0'),
                    'u' => {
                        let hex: String =
                            chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                        back.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                    }
                    other => back.push(other),
                }
            }
            assert_eq!(&back, s);
        }
    }

    #[test]
    fn comments_stay_on_one_line() {
        for s in HOSTILE {
            let c = rust_comment(s);
            assert!(!c.chars().any(|c| c.is_control() || c == '\u{2028}'), "{c}");
        }
    }

    #[test]
    fn markdown_has_no_active_characters() {
        for s in HOSTILE {
            let t = md_text(s);
            assert!(!t.contains('\n'));
            // Every active character is preceded by a backslash.
            let b = t.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'\\' {
                    assert!(MD_ACTIVE.as_bytes().contains(&b[i + 1]), "{t}");
                    i += 2;
                    continue;
                }
                assert!(!MD_ACTIVE.as_bytes().contains(&b[i]), "{t}");
                i += 1;
            }
            let code = md_code(s);
            assert!(!code.contains('\n'));
        }
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("`x"), "`` `x ``");
    }

    #[test]
    fn shell_words_cannot_expand() {
        assert_eq!(shell_word("models/mlp.onnx"), "models/mlp.onnx");
        for s in HOSTILE {
            let w = shell_word(s);
            assert!(
                !w.contains(['\n', '\r', ' ', '"', '`', '#', ':', '{', '}', ';']),
                "{w}"
            );
            assert!(!w.contains("${{"));
            // `$` only as the opening of `$'…'`, `'` only around it.
            assert_eq!(w.matches('$').count(), usize::from(w.starts_with("$'")));
            if w.starts_with("$'") {
                assert_eq!(w.matches('\'').count(), 2, "{w}");
            }
        }
        assert_eq!(shell_word("a b"), "$'a\\x20b'");
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name("mlp.onnx"), "mlp.onnx");
        assert_eq!(file_name("my model (v2).onnx"), "my_model__v2_.onnx");
        assert_eq!(file_name(".hidden"), "m.hidden");
        assert_eq!(file_name("-rf.onnx"), "m-rf.onnx");
        for s in HOSTILE {
            let n = file_name(s);
            assert_eq!(shell_word(&n), n);
        }
    }
}
