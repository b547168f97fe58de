//! One file laid over another: the boot partition's few lines over the image's
//! configuration.
//!
//! The rule is key by key: a key the upper file writes replaces the lower
//! file's value of that key, a table (`[camera]`, `[server]`, however written:
//! header, dotted keys, inline table) is laid over the lower one key by key,
//! and an array — `[[ladder]]`, `[[output]]` — is replaced as a whole (rungs
//! mean something only together). Everything the upper file does not write is
//! kept from below. So a card that says only `[encoder] start_rung = 1` keeps
//! the image's preset, which the image chose for the Pi's CPU.
//!
//! Errors name the file they are in: the upper file's syntax, unknown keys and
//! types are checked in that file alone; a rule broken by the combination (a
//! start rung past the end of the ladder below) points at the first key it
//! names that is written, in the file that wrote it (the upper file where
//! both do: its value is the one in force).

use super::locate;
use super::{error_at, parse_as, validate, Config, ConfigError};
use std::path::Path;
use toml_edit::{DocumentMut, TableLike};

/// A file's name and text.
pub type Text<'a> = (&'a Path, &'a str);

/// `upper` laid over `lower` (a file that parsed and validated on its own), or
/// over the built-in defaults when `lower` is `None`; then validated as a whole.
pub fn parse_over(lower: Option<Text>, upper: Text) -> Result<Config, ConfigError> {
    let (upper_file, upper_text) = upper;
    // Alone first: every key of the upper file is known and of its type.
    parse_as::<Config>(upper_file, upper_text)?;
    // Then the two documents merged as text and parsed the one way every
    // file is (a second way, through a value tree, cost 100 KB of binary).
    let document = |file: &Path, text: &str| {
        text.parse::<DocumentMut>()
            .map_err(|e| error_at(file, text, 0, e.message()))
    };
    let upper_doc = document(upper_file, upper_text)?;
    let mut merged = match lower {
        Some((file, text)) => document(file, text)?,
        None => DocumentMut::new(),
    };
    lay_over(merged.as_table_mut(), upper_doc.as_table());
    let config: Config = toml::from_str(&merged.to_string())
        .map_err(|e| error_at(upper_file, upper_text, 0, e.message()))?;
    validate::validate(&config).map_err(|invalid| {
        // Each place lives in the file that wrote it, the upper one first.
        let mut fallback = None;
        for path in &invalid.places {
            for (file, text) in std::iter::once(upper).chain(lower) {
                let (written, offset) = locate::place_in(text, path);
                if written {
                    return error_at(file, text, offset, &invalid.reason);
                }
                fallback.get_or_insert((file, text, offset));
            }
        }
        let (file, text, offset) = fallback.unwrap_or((upper_file, upper_text, 0));
        error_at(file, text, offset, &invalid.reason)
    })?;
    Ok(config)
}

/// Lays `upper` over `lower` key by key: tables (of any form) recursively,
/// anything else, arrays of tables included, replaced whole.
fn lay_over(lower: &mut dyn TableLike, upper: &dyn TableLike) {
    for (key, item) in upper.iter() {
        let below = lower.get_mut(key).and_then(|l| l.as_table_like_mut());
        match (below, item.as_table_like()) {
            (Some(below), Some(above)) => lay_over(below, above),
            _ => {
                lower.insert(key, item.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{default_ladder, parse, CameraKind};

    const IMAGE: &str = "\
[encoder]
start_rung = 1

[[ladder]]
width = 640
height = 360
fps = 30
bitrate_kbps = 800

[[ladder]]
width = 320
height = 180
fps = 15
bitrate_kbps = 200

[server]
max_viewers = 3
";

    fn over(upper: &str) -> Result<Config, ConfigError> {
        parse_over(
            Some((Path::new("image.toml"), IMAGE)),
            (Path::new("boot.toml"), upper),
        )
    }

    #[test]
    fn a_camera_section_alone_keeps_the_image_ladder_and_the_rest() {
        let c = over("[camera]\nkind = \"gopro-legacy\"\n").unwrap();
        let image = parse(Path::new("image.toml"), IMAGE).unwrap();
        assert_eq!(c.camera.kind, CameraKind::GoproLegacy);
        assert_eq!(c.ladder, image.ladder);
        assert_eq!(c.encoder, image.encoder);
        assert_eq!(c.server, image.server);
    }

    #[test]
    fn a_table_is_laid_over_key_by_key_and_an_array_replaced_whole() {
        let c = over(
            "[encoder]\n[server]\nmax_connections = 100\n\
             [[ladder]]\nwidth = 426\nheight = 240\nfps = 15\nbitrate_kbps = 300\n\
             [encoder]\n",
        );
        // Two [encoder] headers are a TOML error, in the card's file.
        assert_eq!(c.unwrap_err().file.to_str(), Some("boot.toml"));
        let c = over(
            "[server]\nmax_connections = 100\n\
             [[ladder]]\nwidth = 426\nheight = 240\nfps = 15\nbitrate_kbps = 300\n\
             [encoder]\nstart_rung = 0\n",
        )
        .unwrap();
        // The card's keys are in force ...
        assert_eq!(c.server.max_connections, 100);
        assert_eq!(c.encoder.start_rung, 0);
        // ... the image's other keys of the same tables stay ...
        assert_eq!(c.server.max_viewers, 3);
        // ... and the card's ladder is the whole ladder.
        assert_eq!(c.ladder.len(), 1);
        assert_eq!(c.ladder[0].width, Some(426));
        // An empty table changes nothing.
        let image = parse(Path::new("image.toml"), IMAGE).unwrap();
        assert_eq!(over("[encoder]\n[server]\n").unwrap(), image);
    }

    #[test]
    fn over_no_file_is_over_the_defaults() {
        let c = parse_over(None, (Path::new("b"), "[log]\nlevel = \"debug\"\n")).unwrap();
        assert_eq!(c.ladder, default_ladder());
        assert_eq!(c.log.level, crate::config::LogLevel::Debug);
    }

    #[test]
    fn errors_of_the_upper_file_alone_point_into_it() {
        let e = over("[camera]\nkind = \"gopro-legacy\"\nadress = \"10.5.5.9\"\n").unwrap_err();
        assert_eq!(
            (e.file.to_str(), e.line, e.column),
            (Some("boot.toml"), 3, 1),
            "{e}"
        );
        let e = over("[camera\n").unwrap_err();
        assert_eq!((e.file.to_str(), e.line), (Some("boot.toml"), 1), "{e}");
        let e = over("[server]\nmax_viewers = 0\n").unwrap_err();
        assert_eq!(
            (e.file.to_str(), e.line, e.column),
            (Some("boot.toml"), 2, 1)
        );
    }

    #[test]
    fn a_rule_broken_by_the_combination_points_at_the_key_written() {
        // The image's start_rung = 1 past the boot file's one-rung ladder: the
        // rule names encoder.start_rung, written in the image.
        let e = over("[[ladder]]\nwidth = 426\nheight = 240\nfps = 15\nbitrate_kbps = 300\n")
            .unwrap_err();
        assert!(e.reason.contains("start_rung"), "{e}");
        assert_eq!(
            (e.file.to_str(), e.line, e.column),
            (Some("image.toml"), 2, 1),
            "{e}"
        );
        // And the other way round: the boot file's start rung past the image's ladder.
        let e = over("[encoder]\nstart_rung = 5\n").unwrap_err();
        assert_eq!(
            (e.file.to_str(), e.line, e.column),
            (Some("boot.toml"), 2, 1),
            "{e}"
        );
        // Both write the key: the card's value is in force, so its line is named.
        let e = over("# a comment\n[encoder]\nstart_rung = 2\n").unwrap_err();
        assert_eq!(
            (e.file.to_str(), e.line, e.column),
            (Some("boot.toml"), 3, 1),
            "{e}"
        );
    }

    #[test]
    fn every_way_of_writing_a_table_is_laid_over() {
        // Dotted keys at the top, an inline table, an array of inline tables.
        let c = over("server.max_viewers = 2\ncamera = { kind = \"open-gopro\" }\n").unwrap();
        assert_eq!(c.server.max_viewers, 2);
        assert_eq!(c.camera.kind, CameraKind::OpenGopro);
        assert_eq!(c.ladder.len(), 2, "the image's ladder");
        let c = over("ladder = [{ width = 320, height = 180, fps = 15, bitrate_kbps = 200 }, { width = 160, height = 90, fps = 15, bitrate_kbps = 100 }]\n").unwrap();
        assert_eq!((c.ladder.len(), c.ladder[1].width), (2, Some(160)));
        // The image written with dotted keys, the card with headers.
        let image = "encoder.start_rung = 0\nserver.max_viewers = 5\n[log]\nlevel = \"warn\"\n";
        let c = parse_over(
            Some((Path::new("image.toml"), image)),
            (Path::new("boot.toml"), "[server]\nmax_connections = 64\n"),
        )
        .unwrap();
        assert_eq!((c.server.max_viewers, c.server.max_connections), (5, 64));
        assert_eq!(c.log.level, crate::config::LogLevel::Warn);
    }

    #[test]
    fn an_empty_upper_file_changes_nothing() {
        let image = parse(Path::new("image.toml"), IMAGE).unwrap();
        assert_eq!(over("").unwrap(), image);
        assert_eq!(over("# only a comment\n").unwrap(), image);
    }
}
