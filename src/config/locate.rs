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

/// A node on the way down a path: a table, whichever way it is written, an
/// array, or a plain value.
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Inline(&'a toml_edit::InlineTable),
    Tables(&'a toml_edit::ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
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

    /// The child at `seg` and the byte offset that stands for it: the key as
    /// written for a keyed child (a table's header for `[table]`), the element
    /// itself for an indexed one.
    fn child(&self, seg: Seg) -> Option<(Node<'a>, Option<usize>)> {
        let keyed = |key: Option<&Key>, node: Node<'a>, own: Option<usize>| {
            let at = own.or_else(|| key.and_then(Key::span).map(|s| s.start));
            Some((node, at))
        };
        match (self, seg) {
            (Node::Table(t), Seg::Key(k)) => {
                let item = t.get(k)?;
                // `[server]` points at its header; `server.x = 1` and
                // `server = { … }` at the key.
                let header = match item {
                    Item::Table(t) => t.span().map(|s| s.start),
                    _ => None,
                };
                keyed(t.key(k), Node::of_item(item), header)
            }
            (Node::Inline(t), Seg::Key(k)) => keyed(t.key(k), Node::of_value(t.get(k)?), None),
            (Node::Tables(a), Seg::Index(i)) => {
                let t = a.get(i)?;
                Some((Node::Table(t), t.span().map(|s| s.start)))
            }
            (Node::Array(a), Seg::Index(i)) => {
                let v = a.get(i)?;
                Some((Node::of_value(v), v.span().map(|s| s.start)))
            }
            _ => None,
        }
    }
}

/// How far `path` is written in `doc`: whether all of it is, and the offset of
/// the deepest part that is (0 when none is).
fn resolve(doc: &toml_edit::Table, path: &KeyPath) -> (bool, usize) {
    let mut node = Node::Table(doc);
    let mut at = 0;
    for seg in &path.0 {
        match node.child(*seg) {
            Some((child, offset)) => {
                at = offset.unwrap_or(at);
                node = child;
            }
            None => return (false, at),
        }
    }
    (true, at)
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
