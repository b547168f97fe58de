//! The phone's page, embedded in the binary: the HTML, script, style and the
//! vendored player (gzip-compressed).

/// An embedded file of the web page.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub cache: &'static str,
    /// `body` is gzip-compressed: sent with `Content-Encoding: gzip`. Only for
    /// files that only browsers fetch (all accept gzip); it keeps the binary small.
    pub gzip: bool,
}

pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../web/index.html"),
        cache: "no-cache",
        gzip: false,
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/app.js"),
        cache: "no-cache",
        gzip: false,
    },
    Asset {
        path: "/diag.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../web/diag.js"),
        cache: "no-cache",
        gzip: false,
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../web/app.css"),
        cache: "no-cache",
        gzip: false,
    },
    // Versioned path: a phone may keep it for a day.
    Asset {
        path: "/vendor/mpegts-1.8.2.js",
        content_type: "text/javascript; charset=utf-8",
        // web/vendor/mpegts.js/mpegts.js, compressed with `gzip -9n` (a test checks they match).
        body: include_bytes!("../../web/vendor/mpegts.js/mpegts.js.gz"),
        cache: "public, max-age=86400",
        gzip: true,
    },
    Asset {
        path: "/vendor/LICENSE.mpegts.js.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../web/vendor/mpegts.js/LICENSE"),
        cache: "public, max-age=86400",
        gzip: false,
    },
    Asset {
        path: "/vendor/qrcode-generator-2.0.4.js",
        content_type: "text/javascript; charset=utf-8",
        // web/vendor/qrcode-generator/qrcode.js, compressed with `gzip -9n`.
        body: include_bytes!("../../web/vendor/qrcode-generator/qrcode.js.gz"),
        cache: "public, max-age=86400",
        gzip: true,
    },
    Asset {
        path: "/vendor/LICENSE.qrcode-generator.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../web/vendor/qrcode-generator/LICENSE"),
        cache: "public, max-age=86400",
        gzip: false,
    },
];

/// The embedded file served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
