//! Where in the file a configuration error points, and how it is worded.
//!
//! A validation error names the key at fault as a path (`output[1].probe_interval_ms`);
//! that path is looked up in a span-keeping parse of the same text, so an error in
//! the second `[[output]]`, in an inline table or in a dotted key points at that key.

use std::fmt;
use toml_edit::{ImDocument, Item, Key, Value};

/// One step of a path into the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Key(&'static str),
    Index(usize),
}

/// A key in the document, e.g. `ladder[2].width`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// `table.key`.
    pub fn key(table: &'static str, key: &'static str) -> KeyPath {
        KeyPath(vec![Seg::Key(table), Seg::Key(key)])
    }

    /// `table[index].key`, a key of one `[[table]]` element.
    pub fn item(table: &'static str, index: usize, key: &'static str) -> KeyPath {
        KeyPath(vec![Seg::Key(table), Seg::Index(index), Seg::Key(key)])
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

type Span = Option<std::ops::Range<usize>>;

/// A node of the parsed document: a table, whichever way it is written, an
/// array, or a plain value.
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Inline(&'a toml_edit::InlineTable),
    Tables(&'a toml_edit::ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
}

/// One step down from a node.
#[derive(PartialEq)]
enum Step<'a> {
    Name(&'a str),
    Index(usize),
}

struct Child<'a> {
    step: Step<'a>,
    /// The key as written (none for an array element).
    key: Span,
    /// The value, or for a `[table]` its header, for `[[table]]` that element's header.
    own: Span,
    node: Node<'a>,
}

impl Child<'_> {
    /// The offset that stands for this child: a `[table]`'s header, otherwise
    /// the key (`server.x = 1`, `camera = { … }`), or an array element itself.
    fn position(&self) -> Option<usize> {
        let span = match self.node {
            Node::Table(_) => self.own.clone().or(self.key.clone()),
            _ => self.key.clone().or(self.own.clone()),
        };
        span.map(|s| s.start)
    }

    /// Whether `offset` falls on its key, value or header (an empty span at
    /// `offset` counts).
    fn covers(&self, offset: usize) -> bool {
        [&self.key, &self.own].into_iter().any(|span| {
            span.as_ref()
                .is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
        })
    }
}

impl<'a> Node<'a> {
    fn of_item(item: &'a Item) -> Node<'a> {
        match item {
            Item::Table(t) => Node::Table(t),
            Item::ArrayOfTables(a) => Node::Tables(a),
            Item::Value(v) => Node::of_value(v),
            Item::None => Node::Leaf,
        }
    }

    fn of_value(value: &'a Value) -> Node<'a> {
        match value {
            Value::InlineTable(t) => Node::Inline(t),
            Value::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }

    fn children(&self) -> Vec<Child<'a>> {
        match self {
            Node::Table(t) => t
                .iter()
                .map(|(k, item)| Child {
                    step: Step::Name(k),
                    key: t.key(k).and_then(Key::span),
                    own: match item {
                        Item::Table(t) => t.span(),
                        _ => item.span(),
                    },
                    node: Node::of_item(item),
                })
                .collect(),
            Node::Inline(t) => t
                .iter()
                .map(|(k, v)| Child {
                    step: Step::Name(k),
                    key: t.key(k).and_then(Key::span),
                    own: v.span(),
                    node: Node::of_value(v),
                })
                .collect(),
            Node::Tables(a) => elements(a.iter().map(|t| (t.span(), Node::Table(t)))),
            Node::Array(a) => elements(a.iter().map(|v| (v.span(), Node::of_value(v)))),
            Node::Leaf => Vec::new(),
        }
    }

    fn child(&self, seg: Seg) -> Option<Child<'a>> {
        let step = match seg {
            Seg::Key(k) => Step::Name(k),
            Seg::Index(i) => Step::Index(i),
        };
        self.children().into_iter().find(|c| c.step == step)
    }

    /// The path of the innermost key, value or header at `offset`, e.g. `ladder[2].fps`.
    fn path_to(&self, offset: usize) -> Option<String> {
        for child in self.children() {
            let inner = child.node.path_to(offset);
            if inner.is_some() || child.covers(offset) {
                let step = match child.step {
                    Step::Name(k) => format!(".{k}"),
                    Step::Index(i) => format!("[{i}]"),
                };
                return Some(step + &inner.unwrap_or_default());
            }
        }
        None
    }
}

/// The elements of an array (of tables or values), each by its own span.
fn elements<'a>(items: impl Iterator<Item = (Span, Node<'a>)>) -> Vec<Child<'a>> {
    items
        .enumerate()
        .map(|(i, (own, node))| Child {
            step: Step::Index(i),
            key: None,
            own,
            node,
        })
        .collect()
}

/// How far `path` is written in `doc`: whether all of it is, and the offset of
/// the deepest part that is (0 when none is).
fn resolve(doc: &toml_edit::Table, path: &KeyPath) -> (bool, usize) {
    let mut node = Node::Table(doc);
    let mut at = 0;
    for seg in &path.0 {
        match node.child(*seg) {
            Some(child) => {
                at = child.position().unwrap_or(at);
                node = child.node;
            }
            None => return (false, at),
        }
    }
    (true, at)
}

/// Where `path` is in `text`: whether all of it is written, and the offset of
/// the deepest part that is (0 when none is, or when `text` does not parse).
pub fn place_in(text: &str, path: &KeyPath) -> (bool, usize) {
    match ImDocument::parse(text) {
        Ok(doc) => resolve(doc.as_table(), path),
        Err(_) => (false, 0),
    }
}

/// The byte offset an error about `places` points at: the first of them that
/// is written in `text`, else the table around the first one (its header, or
/// the `[[array]]` element), else the start of the file.
pub fn offset_of(text: &str, places: &[KeyPath]) -> usize {
    let Ok(doc) = ImDocument::parse(text) else {
        return 0;
    };
    let mut fallback = None;
    for path in places {
        let (written, at) = resolve(doc.as_table(), path);
        if written {
            return at;
        }
        fallback.get_or_insert(at);
    }
    fallback.unwrap_or(0)
}

/// The reason for an error of the TOML parser or of serde: a syntax error says
/// so (a control character by name: toml gives no message for it); any other
/// but an unknown key names the key it is about, found by its span, e.g.
/// `ladder[2]: missing field `fps``.
pub fn parser_reason(text: &str, offset: usize, message: &str) -> String {
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(_) => {
            let (line, column) = line_col(text, offset);
            let at = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.chars().nth(column - 1));
            return match at {
                Some(c) if c.is_control() && c != '\t' => format!(
                    "control character U+{:04X} is not allowed in a TOML file, not even in a comment",
                    u32::from(c)
                ),
                _ if message.trim().is_empty() => {
                    "TOML syntax: not valid here (check quotes, brackets and `key = value`)".into()
                }
                _ => format!("TOML syntax: {message}"),
            };
        }
    };
    // "unknown field `x`" names the key itself, and points at it.
    if message.starts_with("unknown field") {
        return message.to_string();
    }
    match Node::Table(doc.as_table()).path_to(offset) {
        // Paths start with a dot: every top-level step is a name.
        Some(path) => format!("{}: {message}", path.strip_prefix('.').unwrap_or(&path)),
        None => message.to_string(),
    }
}

/// 1-based line and column (in characters) of a byte offset; an offset past
/// the end or inside a character is moved back to a character boundary.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Longest reason printed; what the file said is quoted shorter than this.
const MAX_REASON: usize = 400;

/// A reason as one non-empty line: the parser's multi-line messages joined
/// with "; ", control characters escaped, overlong text cut.
pub fn one_line(message: &str) -> String {
    let joined = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let mut out = String::new();
    for c in joined.chars() {
        if out.len() >= MAX_REASON {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        "not a valid livestreamd configuration".into()
    } else {
        out
    }
}

/// A value from the file, quoted for a reason: escaped, and cut when long.
pub fn quoted(s: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = s.chars().take(MAX).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, path: KeyPath) -> (usize, usize) {
        line_col(text, offset_of(text, &[path]))
    }

    #[test]
    fn keys_are_found_in_every_way_of_writing_a_table() {
        let text = "[[output]]\nurl = \"a\"\n\n[[output]]\nurl = \"b\"\nprobe_port = 0\n";
        assert_eq!(at(text, KeyPath::item("output", 1, "probe_port")), (6, 1));
        assert_eq!(at(text, KeyPath::item("output", 0, "url")), (2, 1));
        // Not written: the element's own header.
        assert_eq!(at(text, KeyPath::item("output", 1, "probe")), (4, 1));
        let text = "camera = { kind = \"udp\", retry_max_s = 0 }\n";
        assert_eq!(at(text, KeyPath::key("camera", "retry_max_s")), (1, 26));
        assert_eq!(at(text, KeyPath::key("camera", "fov")), (1, 1));
        let text = "ladder = [{ width = 2 }, { width = 4 }]\n";
        assert_eq!(at(text, KeyPath::item("ladder", 1, "width")), (1, 28));
        let text = "# c\nserver.max_viewers = 0\n";
        assert_eq!(at(text, KeyPath::key("server", "max_viewers")), (2, 8));
        let text = "[log]\n[server]\n  listen = \"x\"\n";
        assert_eq!(at(text, KeyPath::key("server", "listen")), (3, 3));
        assert_eq!(at(text, KeyPath::key("server", "max_viewers")), (2, 1));
        assert_eq!(at(text, KeyPath::key("adapt", "probe_s")), (1, 1));
    }

    #[test]
    fn parser_errors_name_their_key_or_say_syntax() {
        let reason =
            |text: &str, needle: &str| parser_reason(text, text.find(needle).unwrap(), "boom");
        let text = "[[ladder]]\nwidth = 2\n[[ladder]]\nwidth = \"x\"\n";
        assert_eq!(reason(text, "\"x\""), "ladder[1].width: boom");
        assert_eq!(reason(text, "[[ladder]]\nwidth = \""), "ladder[1]: boom");
        let text = "camera = { kind = 3 }\n";
        assert_eq!(reason(text, "3"), "camera.kind: boom");
        assert_eq!(reason("x = 1\n", "x"), "x: boom");
        let text = "[server]\nmax_veiwers = 2\n";
        let unknown = "unknown field `max_veiwers`, expected one of `listen`";
        assert_eq!(parser_reason(text, 9, unknown), unknown);
        assert_eq!(
            reason("# \u{14}\n", "\u{14}"),
            "control character U+0014 is not allowed in a TOML file, not even in a comment"
        );
        assert_eq!(reason("a = \n", "\n"), "TOML syntax: boom");
        assert!(parser_reason("[", 1, "").starts_with("TOML syntax: not valid here"));
    }

    #[test]
    fn the_first_written_place_wins() {
        let text = "[server]\nmax_connections = 4\n";
        let places = [
            KeyPath::key("server", "max_viewers"),
            KeyPath::key("server", "max_connections"),
        ];
        assert_eq!(line_col(text, offset_of(text, &places)), (2, 1));
    }

    #[test]
    fn paths_print_as_written() {
        assert_eq!(
            KeyPath::item("ladder", 2, "width").to_string(),
            "ladder[2].width"
        );
        assert_eq!(
            KeyPath::key("adapt", "probe_s").to_string(),
            "adapt.probe_s"
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
        assert_eq!(line_col("é", 1), (1, 1));
    }

    #[test]
    fn reasons_are_one_line() {
        assert_eq!(one_line("a\n  b\n\n"), "a; b");
        assert_eq!(one_line(" \n"), "not a valid livestreamd configuration");
        assert_eq!(one_line("x\u{7}y"), "x\\u{7}y");
        assert!(one_line(&"x".repeat(5000)).chars().count() <= MAX_REASON + 1);
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
        assert_eq!(quoted(&"y".repeat(100)).chars().count(), 63);
    }
}
